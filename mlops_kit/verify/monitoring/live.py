"""The dashboard's queries evaluated on the local Prometheus: what Grafana would show, as a table.

Notebook 04 shows it after its load test. Where no Prometheus runs it says how to get one
(``apt-get install prometheus``, ``mlops-kit monitor``) and shows nothing else: the figures read
from the endpoint's ``/metrics`` directly are in the load test's own comparison.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlops_kit import display
from mlops_kit.errors import PrometheusMissing
from mlops_kit.verify.monitoring.analysis import literal
from mlops_kit.verify.monitoring.metrics import LOCAL_FLAVOURS, Flavour
from mlops_kit.verify.monitoring.queries import instantiate, queries

if TYPE_CHECKING:
    import pandas as pd

    from mlops_kit.project import Project


@dataclass
class LiveDashboard(display.Rich):
    """Each panel's query, evaluated now over the last ``window_s`` seconds."""

    source: str | None
    """The Prometheus asked; None when none runs."""
    rows: list[dict[str, Any]] = field(default_factory=list)
    note: str = ""

    @property
    def answered(self) -> int:
        """Panels whose query returned data."""
        return sum(1 for row in self.rows if row["series"])

    def summary(self) -> str:
        """One line: how many panels have data, from where."""
        if self.source is None:
            return self.note
        return f"{self.answered} of {len(self.rows)} dashboard queries answered by {self.source}"

    def table(self) -> pd.DataFrame:
        """The panels: metric set, title, series returned, their summed value, unit."""
        import pandas as pd

        return pd.DataFrame(self.rows, columns=["metrics", "panel", "series", "value", "unit"])

    def _repr_html_(self) -> str:
        ok = None if self.source is None else self.answered == len(self.rows)
        shown = display.verdict(ok, self.summary(), "Prometheus")
        return shown + (display.table(self.rows) if self.rows else "")

    def _figure_(self) -> display.Figure:
        ok = None if self.source is None else self.answered == len(self.rows)
        return display.Figure("Prometheus", self.summary(), ok)


def live_dashboard(
    project: Project,
    environment: str,
    *,
    window_s: float = 30.0,
    flavours: Iterable[Flavour] = LOCAL_FLAVOURS,
) -> LiveDashboard:
    """Evaluate every query of the local dashboard for ``environment`` on the local Prometheus."""
    from mlops_kit.verify.monitoring import prometheus
    from mlops_kit.verify.monitoring.promql import PrometheusClient

    running = prometheus.status(project)
    if running is None:
        if prometheus.find_binary(project.settings.monitor) is None:
            note = str(PrometheusMissing(project.settings.monitor.binary))
        else:
            note = "no local Prometheus runs: `mlops-kit monitor` starts it"
        return LiveDashboard(None, note=note)
    values = {
        "namespace": literal(environment),
        "model": literal(project.model_name) + "(--.*)?",
        "__rate_interval": f"{max(round(window_s), 1)}s",
    }
    board = LiveDashboard(running.url)
    with PrometheusClient(running.url) as client:
        for flavour in flavours:
            for query in queries(flavour):
                samples = client.query(instantiate(query.expr, values))
                finite = [s.value for s in samples if not math.isnan(s.value)]
                board.rows.append(
                    {
                        "metrics": flavour,
                        "panel": query.title,
                        "series": len(samples),
                        "value": round(sum(finite), 6) if finite else None,
                        "unit": query.unit,
                    }
                )
    return board

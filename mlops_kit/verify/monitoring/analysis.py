"""Per-version figures for a canary's analysis, from the same PromQL the dashboard shows.

:meth:`PrometheusMetrics.metrics_for` answers "how did version V of the model do in
environment E over the last W seconds": requests, server errors, error rate, p99 latency. It
evaluates the dashboard's per-version panels (:data:`~.queries.REQUESTS_BY_VERSION`,
:data:`~.queries.ERRORS_BY_VERSION`, :data:`~.queries.P99_BY_VERSION`) with the dashboard's
variables filled in — against the local Prometheus (metric set ``mlops-kit``) or a cluster's
(``seldon-v1``, its predictors labelled with their version). :func:`prometheus_for` finds the
Prometheus of an environment, or says why there is none. Where none runs, a rollout reads the
endpoint's own ``/metrics`` instead (:class:`mlops_kit.promote.analysis.ScrapeSource`).
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlops_kit.errors import ConfigError, PrometheusMissing
from mlops_kit.verify.monitoring.metrics import Flavour
from mlops_kit.verify.monitoring.queries import (
    ERRORS_BY_VERSION,
    P99_BY_VERSION,
    REQUESTS_BY_VERSION,
    by_title,
    instantiate,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from mlops_kit.project import Project
    from mlops_kit.verify.monitoring.promql import PrometheusClient

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class VersionMetrics:
    """What one version did over a window: the figures a canary step is judged by."""

    version: str
    window_s: float
    requests: int
    """Requests the version answered."""
    errors: int
    """Of those, answered with a server error (the caller's bad requests are not counted)."""
    error_rate: float | None
    """``errors / requests``; None without requests."""
    p99_ms: float | None
    """99th percentile time to answer, from the histogram's buckets; None without requests."""
    source: str
    """Where the figures come from (a Prometheus URL, or the endpoint scraped)."""

    def to_dict(self) -> dict[str, Any]:
        """Plain data, for a rollout's timeline and evidence."""
        return {
            "version": self.version,
            "window_s": self.window_s,
            "requests": self.requests,
            "errors": self.errors,
            "error_rate": None if self.error_rate is None else round(self.error_rate, 5),
            "p99_ms": None if self.p99_ms is None else round(self.p99_ms, 2),
            "source": self.source,
        }


def literal(value: str) -> str:
    """``value`` as an exact-match regular expression inside a PromQL string."""
    return re.sub(r"([.^$*+?()\[\]{}|\\])", r"\\\\\1", value)


class PrometheusMetrics:
    """:class:`MetricsSource` evaluating the dashboard's per-version panels on a Prometheus.

    ``namespace_of`` maps an environment to the ``namespace`` label its endpoints carry (the
    environment's name locally, its Kubernetes namespace on a cluster).
    """

    def __init__(
        self,
        client: PrometheusClient,
        *,
        flavour: Flavour = "mlops-kit",
        model: str | None = None,
        namespace_of: Callable[[str], str] = lambda environment: environment,
    ) -> None:
        self.client = client
        self.flavour = flavour
        self.model = model
        self.namespace_of = namespace_of

    def variables(self, environment: str, version: str, window: float) -> dict[str, str]:
        """The dashboard's variables for one version over one window."""
        values = {
            "namespace": literal(self.namespace_of(environment)),
            "version": literal(version),
            "__rate_interval": f"{max(round(window), 1)}s",
        }
        if self.model is not None:
            # The model's own name, or a private name of one of its versions (model--...).
            values["model"] = literal(self.model) + "(--.*)?"
            values["deployment"] = literal(self.model)
        return values

    def expressions(self, environment: str, version: str, window: float) -> dict[str, str]:
        """The three PromQL expressions evaluated, by panel title."""
        values = self.variables(environment, version, window)
        titles = (REQUESTS_BY_VERSION, ERRORS_BY_VERSION, P99_BY_VERSION)
        return {t: instantiate(by_title(self.flavour, t).expr, values) for t in titles}

    def metrics_for(self, environment: str, version: str, window: float) -> VersionMetrics:
        """Evaluate the panels now; rates times the window give counts, as ``increase`` does."""
        exprs = self.expressions(environment, version, window)
        rate = self.client.value(exprs[REQUESTS_BY_VERSION]) or 0.0
        ratio = self.client.value(exprs[ERRORS_BY_VERSION])
        p99 = self.client.value(exprs[P99_BY_VERSION])
        requests = round(rate * window)
        return VersionMetrics(
            version=version,
            window_s=window,
            requests=requests,
            errors=round((ratio or 0.0) * requests),
            error_rate=ratio if requests else None,
            p99_ms=None if p99 is None or math.isnan(p99) or not requests else p99 * 1000.0,
            source=self.client.url,
        )


def prometheus_for(project: Project, environment: str) -> PrometheusMetrics | None:
    """The Prometheus holding ``environment``'s per-version figures; None for a local
    environment where none runs (logging how to get Prometheus when it is not installed).

    ``monitor.prometheus_url`` when set (a cluster's Prometheus; Seldon v1 metrics on a
    Kubernetes environment), else, for a local environment, the running local Prometheus.
    ConfigError for another target without ``monitor.prometheus_url``, and for Seldon Core v2
    (no per-version latency series).
    """
    from mlops_kit.verify.monitoring import prometheus
    from mlops_kit.verify.monitoring.promql import PrometheusClient

    settings = project.settings
    env = settings.environment(environment)
    url = settings.monitor.prometheus_url
    if env.target == "kubernetes" and settings.gitops.manifest == "seldon-v2":
        raise ConfigError(
            f"environment {environment!r} deploys Seldon Core v2 Models, whose metrics count "
            "inferences per model but time them per server: a canary's per-version latency "
            "cannot be judged there. Use gitops.manifest: seldon-v1 (per-predictor executor "
            "metrics) for progressive rollouts, or rollout.strategy: replace"
        )
    if url:
        if env.target == "kubernetes":
            from mlops_kit.targets.kubernetes.endpoints import namespace_for

            return PrometheusMetrics(
                PrometheusClient(url),
                flavour="seldon-v1",
                model=project.model_name,
                namespace_of=lambda name: namespace_for(settings, settings.environment(name)),
            )
        return PrometheusMetrics(PrometheusClient(url), model=project.model_name)
    if env.target != "local":
        raise ConfigError(
            f"environment {environment!r} runs on the {env.target} target, whose metrics this "
            "machine's Prometheus does not scrape: set monitor.prometheus_url "
            "(MLOPS_KIT_MONITOR__PROMETHEUS_URL) to the Prometheus that does"
        )
    running = prometheus.status(project)
    if running is not None:
        return PrometheusMetrics(PrometheusClient(running.url), model=project.model_name)
    if prometheus.find_binary(settings.monitor) is None:
        logger.warning("%s", PrometheusMissing(settings.monitor.binary))
    else:
        logger.info("no local Prometheus runs (`mlops-kit monitor` starts it): scraping directly")
    return None


def wait_for_scrape(client: PrometheusClient, expr: str, *, timeout: float = 30.0) -> None:
    """Block until ``expr`` has a sample (e.g. a new endpoint's first scrape arrived)."""
    from mlops_kit.process import wait_until

    wait_until(lambda: bool(client.query(expr)), timeout=timeout, interval=0.5, what=expr)

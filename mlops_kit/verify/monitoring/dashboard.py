"""A Grafana dashboard (JSON model) over the queries of the chosen metric sets, and writing it."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mlops_kit.display import Fields
from mlops_kit.errors import ConfigError
from mlops_kit.verify.monitoring.metrics import FLAVOURS, Flavour
from mlops_kit.verify.monitoring.queries import queries


def _variables(flavours: Iterable[Flavour]) -> list[dict[str, Any]]:
    ds = {"type": "prometheus", "uid": "${datasource}"}
    found: list[dict[str, Any]] = [
        {
            "name": "datasource",
            "label": "Prometheus",
            "type": "datasource",
            "query": "prometheus",
            "current": {},
            "hide": 0,
        },
        _query_variable("namespace", "label_values(namespace)", ds),
    ]
    if any(f in ("mlserver", "mlops-kit", "seldon-v2") for f in flavours):
        if "mlserver" in flavours:
            source = "label_values(model_infer_request_success_total, model)"
        elif "mlops-kit" in flavours:
            source = "label_values(mlops_kit_inferences_total, model)"
        else:
            source = "label_values(seldon_model_infer_total, model)"
        found.append(_query_variable("model", source, ds))
    if "mlops-kit" in flavours:
        found.append(
            _query_variable("version", "label_values(mlops_kit_inferences_total, version)", ds)
        )
    elif "seldon-v1" in flavours:
        found.append(
            _query_variable(
                "version",
                "label_values(seldon_api_executor_server_requests_seconds_count, "
                "predictor_version)",
                ds,
            )
        )
    if "seldon-v1" in flavours:
        found.append(
            _query_variable(
                "deployment",
                "label_values(seldon_api_executor_server_requests_seconds_count, deployment_name)",
                ds,
            )
        )
    return found


def _query_variable(name: str, query: str, ds: dict[str, str]) -> dict[str, Any]:
    return {
        "name": name,
        "label": name.capitalize(),
        "type": "query",
        "datasource": ds,
        "definition": query,
        "query": {"query": query, "refId": f"{name}-variable"},
        "includeAll": True,
        "allValue": ".*",
        "multi": True,
        "refresh": 2,
        "current": {"text": "All", "value": "$__all"},
        "hide": 0,
    }


_TITLES: dict[Flavour, str] = {
    "mlserver": "MLServer",
    "mlops-kit": "mlops-kit runtime, per version",
    "seldon-v1": "Seldon Core v1 (executor)",
    "seldon-v2": "Seldon Core v2",
}


def dashboard(
    flavours: Iterable[Flavour] = FLAVOURS,
    *,
    title: str = "mlops-kit model serving",
    uid: str = "mlops-kit-serving",
) -> dict[str, Any]:
    """A Grafana dashboard (JSON model, schema 39) for the chosen metric sets.

    Each metric set is a row of time-series panels, two per line; every panel reads the
    Prometheus data source chosen in the ``datasource`` variable.
    """
    chosen = list(dict.fromkeys(flavours))
    unknown = [f for f in chosen if f not in FLAVOURS]
    if unknown or not chosen:
        raise ConfigError(f"metric sets must be among {', '.join(FLAVOURS)}; got {unknown}")
    ds = {"type": "prometheus", "uid": "${datasource}"}
    panels: list[dict[str, Any]] = []
    next_id, y = 1, 0
    for flavour in chosen:
        panels.append(
            {
                "id": next_id,
                "type": "row",
                "title": _TITLES[flavour],
                "collapsed": False,
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": y},
                "panels": [],
            }
        )
        next_id, y = next_id + 1, y + 1
        for index, query in enumerate(queries(flavour)):
            x = 0 if index % 2 == 0 else 12
            panels.append(
                {
                    "id": next_id,
                    "type": "timeseries",
                    "title": query.title,
                    "description": query.description,
                    "datasource": ds,
                    "gridPos": {"h": 8, "w": 12, "x": x, "y": y},
                    "fieldConfig": {"defaults": {"unit": query.unit}, "overrides": []},
                    "options": {
                        "legend": {"displayMode": "list", "placement": "bottom"},
                        "tooltip": {"mode": "multi"},
                    },
                    "targets": [
                        {
                            "refId": "A",
                            "datasource": ds,
                            "expr": query.expr,
                            "legendFormat": query.legend or "__auto",
                            "range": True,
                        }
                    ],
                }
            )
            next_id += 1
            if x == 12:
                y += 8
        if len(queries(flavour)) % 2:
            y += 8
    return {
        "uid": uid,
        "title": title,
        "tags": ["mlops-kit", "mlserver", "seldon"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "10s",
        "time": {"from": "now-30m", "to": "now"},
        "templating": {"list": _variables(chosen)},
        "annotations": {"list": []},
        "panels": panels,
    }


def write_dashboard(
    directory: str | Path = "build/monitoring",
    flavours: Iterable[Flavour] = FLAVOURS,
) -> Fields:
    """Write ``dashboard.json`` (import it in Grafana) and ``queries.json`` (the PromQL by set)."""
    chosen = list(flavours)
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    board = out / "dashboard.json"
    board.write_text(json.dumps(dashboard(chosen), indent=2) + "\n")
    listing = out / "queries.json"
    listing.write_text(
        json.dumps(
            {f: [q.__dict__ for q in queries(f)] for f in chosen}, indent=2, ensure_ascii=False
        )
        + "\n"
    )
    return Fields(dashboard=board, queries=listing)

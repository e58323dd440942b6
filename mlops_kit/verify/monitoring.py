"""Server-side metrics: MLServer / Seldon Core metric names, scrapes, PromQL, a Grafana dashboard.

Three things, all without a server of their own:

* :data:`METRICS`, the catalogue of the Prometheus series the serving stacks expose — MLServer
  1.7 (checked by scraping a live server), the Seldon Core v1 executor and the Seldon Core v2
  agent (from their documentation and source);
* :func:`scrape` and :func:`server_figures`, which read a server's ``/metrics`` before and after a
  load test and turn the difference into request counts, status codes and latency quantiles
  (estimated from histogram buckets the way PromQL's ``histogram_quantile`` does);
* :func:`queries` and :func:`dashboard`, the PromQL behind a Grafana dashboard for a cluster, and
  :func:`write_dashboard` to put both under ``build/monitoring/``.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from mlops_kit.errors import ConfigError, ToolkitError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "FLAVOURS",
    "METRICS",
    "MetricsSnapshot",
    "Query",
    "ServerFigures",
    "check_promql",
    "dashboard",
    "histogram_quantile",
    "metric_names",
    "queries",
    "query_table",
    "scrape",
    "server_figures",
    "write_dashboard",
]

Flavour = Literal["mlserver", "seldon-v1", "seldon-v2"]
FLAVOURS: tuple[Flavour, ...] = ("mlserver", "seldon-v1", "seldon-v2")
"""Metric sets: MLServer itself (local target, Seldon v2 servers), Seldon v1 executor, Seldon v2."""


@dataclass(frozen=True)
class Metric:
    """One Prometheus metric family as its exporter declares it."""

    name: str
    type: Literal["counter", "gauge", "histogram", "summary"]
    labels: tuple[str, ...]
    help: str


def _m(name: str, kind: Any, labels: str, text: str) -> Metric:
    return Metric(name, kind, tuple(labels.split()), text)


# MLServer 1.7.1: scraped from a live server (``rest_server_*`` come from starlette_exporter with
# MLServer's default ``metrics_rest_server_prefix``; ``model_infer_*`` from its data plane).
_MLSERVER = (
    _m(
        "rest_server_requests_total",
        "counter",
        "app_name method path status_code",
        "HTTP requests by route template and status",
    ),
    _m(
        "rest_server_request_duration_seconds",
        "histogram",
        "app_name method path status_code",
        "HTTP request duration, seconds (buckets 5 ms .. 10 s)",
    ),
    _m("rest_server_requests_in_progress", "gauge", "app_name method", "HTTP requests in flight"),
    _m("model_infer_request_success_total", "counter", "model version", "successful inferences"),
    _m("model_infer_request_failure_total", "counter", "model version", "failed inferences"),
    _m("model_infer_request_duration", "summary", "model version", "inference duration, seconds"),
    _m("parallel_request_queue", "histogram", "", "requests queued for inference workers"),
    _m(
        "batch_request_queue",
        "histogram",
        "model_name model_version",
        "requests queued for adaptive batching",
    ),
    _m(
        "grpc_server_handled_total",
        "counter",
        "grpc_type grpc_service grpc_method grpc_code",
        "gRPC calls completed",
    ),
    _m(
        "grpc_server_handling_seconds",
        "histogram",
        "grpc_type grpc_service grpc_method",
        "gRPC call duration, seconds",
    ),
    _m("process_cpu_seconds_total", "counter", "", "CPU time of the server process"),
    _m("process_resident_memory_bytes", "gauge", "", "resident memory of the server process"),
)

# Seldon Core v1: the executor (service orchestrator) in front of every SeldonDeployment.
_SELDON_V1 = (
    _m(
        "seldon_api_executor_server_requests_seconds",
        "histogram",
        "code deployment_name method predictor_name predictor_version service",
        "requests from the ingress to the executor, seconds",
    ),
    _m(
        "seldon_api_executor_client_requests_seconds",
        "histogram",
        "code deployment_name method predictor_name predictor_version service model_name "
        "model_image model_version",
        "requests from the executor to a model component, seconds",
    ),
)

# Seldon Core v2: the agent next to each inference server (scheduler/pkg/metrics/agent.go).
_SELDON_V2 = (
    _m(
        "seldon_model_infer_api_seconds",
        "histogram",
        "server server_replica method code",
        "inference latency at the agent, seconds",
    ),
    _m(
        "seldon_model_infer_total",
        "counter",
        "server server_replica model model_internal method_type code",
        "inferences",
    ),
    _m(
        "seldon_model_infer_seconds_total",
        "counter",
        "server server_replica model model_internal method_type code",
        "summed inference latency, seconds",
    ),
    _m(
        "seldon_model_aggregate_infer_total",
        "counter",
        "server server_replica method_type",
        "inferences over all models of a server",
    ),
    _m(
        "seldon_model_aggregate_infer_seconds_total",
        "counter",
        "server server_replica method_type",
        "summed latency over all models of a server",
    ),
    _m(
        "seldon_loaded_model_gauge",
        "gauge",
        "server server_replica model_internal",
        "models loaded",
    ),
    _m(
        "seldon_loaded_model_memory_bytes_gauge",
        "gauge",
        "server server_replica model_internal",
        "memory of loaded models",
    ),
)

METRICS: dict[Flavour, tuple[Metric, ...]] = {
    "mlserver": _MLSERVER,
    "seldon-v1": _SELDON_V1,
    "seldon-v2": _SELDON_V2 + _MLSERVER,  # Seldon v2 serves models with MLServer underneath
}
"""Every metric the dashboard and the load test read, by metric set."""

_SUFFIXES = {"histogram": ("_bucket", "_sum", "_count"), "summary": ("_sum", "_count")}


def metric_names(flavours: Iterable[Flavour] = FLAVOURS) -> set[str]:
    """Every series name the metric sets expose, ``_bucket``/``_sum``/``_count`` included."""
    names: set[str] = set()
    for flavour in flavours:
        for metric in METRICS[flavour]:
            names.add(metric.name)
            names.update(metric.name + s for s in _SUFFIXES.get(metric.type, ()))
    return names


# -- scraping ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricsSnapshot:
    """Every sample of one scrape of a ``/metrics`` endpoint."""

    url: str
    taken_at: float
    """``time.time()`` of the scrape."""
    samples: tuple[tuple[str, tuple[tuple[str, str], ...], float], ...]
    """``(name, sorted label pairs, value)`` for each sample."""

    def series(self, name: str, **match: str) -> list[tuple[dict[str, str], float]]:
        """Samples called ``name`` whose labels equal ``match`` (``"~regex"`` matches a regex)."""
        found = []
        for sample_name, labels, value in self.samples:
            if sample_name != name:
                continue
            label_map = dict(labels)
            if all(_matches(label_map.get(k, ""), v) for k, v in match.items()):
                found.append((label_map, value))
        return found

    def total(self, name: str, **match: str) -> float:
        """Sum of the matching samples (0 when there are none)."""
        return sum(value for _, value in self.series(name, **match))


def _matches(value: str, wanted: str) -> bool:
    if wanted.startswith("~"):
        return re.fullmatch(wanted[1:], value) is not None
    return value == wanted


def scrape(url: str, *, timeout: float = 2.0) -> MetricsSnapshot:
    """Read the Prometheus text exposition at ``url``; ToolkitError if it cannot be read."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    try:
        with httpx.Client(timeout=timeout, trust_env=False) as client:
            response = client.get(url)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        raise ToolkitError(f"could not scrape metrics at {url}: {exc}") from exc
    samples = []
    try:
        for family in text_string_to_metric_families(response.text):
            for s in family.samples:
                samples.append((s.name, tuple(sorted(s.labels.items())), float(s.value)))
    except ValueError as exc:
        raise ToolkitError(f"{url} did not answer Prometheus text format: {exc}") from exc
    return MetricsSnapshot(url, time.time(), tuple(samples))


def histogram_quantile(q: float, buckets: Mapping[float, float]) -> float | None:
    """The ``q`` quantile of cumulative bucket counts ``{le: count}``, as PromQL estimates it.

    Linear interpolation inside the bucket the quantile falls in; the ``+Inf`` bucket answers with
    the highest finite bound. None when there are no observations.
    """
    if not buckets:
        return None
    bounds = sorted(buckets)
    total = buckets[bounds[-1]]
    if total <= 0:
        return None
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                finite = [b for b in bounds if not math.isinf(b)]
                return finite[-1] if finite else None
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (
                count - lower_count
            )
        lower_bound, lower_count = bound, count
    return bounds[-1]


@dataclass(frozen=True)
class ServerFigures:
    """What the server itself counted between two scrapes: its side of a load test."""

    seconds: float
    """The window the counts are spread over: the time between the scrapes, or the load's own
    duration when a load test sets it (its scrapes also span the generator's start-up)."""
    requests: int
    """Inference requests (``POST .../infer``) the server answered."""
    by_status: dict[str, int] = field(default_factory=dict)
    """Those requests by HTTP status code."""
    mean_ms: float | None = None
    """Mean server-side duration of answered requests."""
    p50_ms: float | None = None
    """Median duration, estimated from the histogram's buckets (5, 10, 25, 50, 75, 100 ms ...)."""
    p90_ms: float | None = None
    p99_ms: float | None = None
    model_success: int = 0
    """``model_infer_request_success_total`` of the model."""
    model_failure: int = 0
    """``model_infer_request_failure_total`` of the model."""
    model_mean_ms: float | None = None
    """Mean time inside the model runtime (``model_infer_request_duration``)."""
    cpu_seconds: float | None = None
    """CPU time the server process used."""
    rss_mb: float | None = None
    """Resident memory of the server process after the load."""

    @property
    def errors(self) -> int:
        """Answers with a status other than 2xx."""
        return sum(n for code, n in self.by_status.items() if not code.startswith("2"))

    @property
    def rps(self) -> float:
        """Answered inference requests per second of the scrape window."""
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    @property
    def cpu_percent(self) -> float | None:
        """CPU use of the server process over the window, in percent of one core."""
        if self.cpu_seconds is None or self.seconds <= 0:
            return None
        return 100.0 * self.cpu_seconds / self.seconds

    def to_dict(self) -> dict[str, Any]:
        """Plain data (for evidence and JSON)."""
        return {
            "seconds": round(self.seconds, 3),
            "requests": self.requests,
            "errors": self.errors,
            "by_status": dict(self.by_status),
            "rps": round(self.rps, 2),
            "mean_ms": _round(self.mean_ms),
            "p50_ms": _round(self.p50_ms),
            "p90_ms": _round(self.p90_ms),
            "p99_ms": _round(self.p99_ms),
            "model_success": self.model_success,
            "model_failure": self.model_failure,
            "model_mean_ms": _round(self.model_mean_ms),
            "cpu_percent": _round(self.cpu_percent),
            "rss_mb": _round(self.rss_mb),
        }


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


_INFER_PATH = "~.*/infer"


def server_figures(
    before: MetricsSnapshot, after: MetricsSnapshot, model_name: str | None = None
) -> ServerFigures:
    """The difference of two scrapes of one MLServer: inference requests, statuses, latency."""

    def delta(name: str, **match: str) -> float:
        return after.total(name, **match) - before.total(name, **match)

    infer = {"method": "POST", "path": _INFER_PATH}
    statuses = {
        labels.get("status_code", "?")
        for labels, _ in after.series("rest_server_requests_total", **infer)
    }
    by_status = {}
    for code in sorted(statuses):
        n = round(delta("rest_server_requests_total", status_code=code, **infer))
        if n > 0:
            by_status[code] = n
    requests = sum(by_status.values())
    count = delta("rest_server_request_duration_seconds_count", **infer)
    total = delta("rest_server_request_duration_seconds_sum", **infer)
    buckets: dict[float, float] = {}
    for labels, value in after.series("rest_server_request_duration_seconds_bucket", **infer):
        bound = float(labels["le"])
        buckets[bound] = buckets.get(bound, 0.0) + value
    for labels, value in before.series("rest_server_request_duration_seconds_bucket", **infer):
        bound = float(labels["le"])
        buckets[bound] = buckets.get(bound, 0.0) - value

    def quantile(q: float) -> float | None:
        found = histogram_quantile(q, buckets)
        return None if found is None else found * 1000.0

    model = {"model": model_name} if model_name else {}
    m_count = delta("model_infer_request_duration_count", **model)
    m_sum = delta("model_infer_request_duration_sum", **model)
    cpu = (
        delta("process_cpu_seconds_total")
        if after.series("process_cpu_seconds_total") and before.series("process_cpu_seconds_total")
        else None
    )
    rss = after.series("process_resident_memory_bytes")
    return ServerFigures(
        seconds=max(after.taken_at - before.taken_at, 0.0),
        requests=requests,
        by_status=by_status,
        mean_ms=1000.0 * total / count if count > 0 else None,
        p50_ms=quantile(0.5),
        p90_ms=quantile(0.9),
        p99_ms=quantile(0.99),
        model_success=round(delta("model_infer_request_success_total", **model)),
        model_failure=round(delta("model_infer_request_failure_total", **model)),
        model_mean_ms=1000.0 * m_sum / m_count if m_count > 0 else None,
        cpu_seconds=cpu,
        rss_mb=rss[0][1] / 2**20 if rss else None,
    )


# -- PromQL and the dashboard --------------------------------------------------------------------


@dataclass(frozen=True)
class Query:
    """One PromQL expression with how to show it."""

    title: str
    expr: str
    unit: str = "short"
    """Grafana unit: ``reqps``, ``s``, ``percentunit``, ``bytes``, ``short``."""
    legend: str = ""
    description: str = ""


_RATE = "[$__rate_interval]"
_NS = 'namespace=~"$namespace"'


def queries(flavour: Flavour = "mlserver") -> list[Query]:
    """The PromQL behind the dashboard for one metric set (Grafana variables left in place).

    ``$namespace``, ``$model`` and ``$deployment`` are dashboard variables; ``$__rate_interval``
    is Grafana's. Kubernetes scrapes add the ``namespace`` and ``pod`` labels used here.
    """
    if flavour == "mlserver":
        sel = f'{_NS}, path=~".*/infer"'
        model = f'{_NS}, model=~"$model"'
        return [
            Query(
                "Inference requests by status",
                f"sum by (status_code) (rate(rest_server_requests_total{{{sel}}}{_RATE}))",
                "reqps",
                "{{status_code}}",
                "REST inference requests answered per second",
            ),
            Query(
                "Error ratio (non-2xx)",
                f'sum(rate(rest_server_requests_total{{{sel}, status_code!~"2.."}}{_RATE})) '
                f"/ sum(rate(rest_server_requests_total{{{sel}}}{_RATE}))",
                "percentunit",
                "errors",
                "share of inference requests answered with an error",
            ),
            *[
                Query(
                    f"Latency p{q}",
                    f"histogram_quantile(0.{q}, sum by (le) "
                    f"(rate(rest_server_request_duration_seconds_bucket{{{sel}}}{_RATE})))",
                    "s",
                    f"p{q}",
                    "from the REST duration histogram",
                )
                for q in ("50", "90", "99")
            ],
            Query(
                "Requests in flight",
                f'sum by (pod) (rest_server_requests_in_progress{{{_NS}, method="POST"}})',
                "short",
                "{{pod}}",
            ),
            Query(
                "Model inferences: success and failure",
                f"sum by (model) (rate(model_infer_request_success_total{{{model}}}{_RATE})) "
                f"or label_replace(sum by (model) "
                f"(rate(model_infer_request_failure_total{{{model}}}{_RATE})), "
                f'"model", "$1 (failed)", "model", "(.*)")',
                "reqps",
                "{{model}}",
            ),
            Query(
                "Mean time in the model runtime",
                f"sum by (model) (rate(model_infer_request_duration_sum{{{model}}}{_RATE})) "
                f"/ sum by (model) (rate(model_infer_request_duration_count{{{model}}}{_RATE}))",
                "s",
                "{{model}}",
            ),
            Query(
                "Server CPU",
                f"sum by (pod) (rate(process_cpu_seconds_total{{{_NS}}}{_RATE}))",
                "short",
                "{{pod}}",
                "cores used by each server process",
            ),
            Query(
                "Server memory",
                f"sum by (pod) (process_resident_memory_bytes{{{_NS}}})",
                "bytes",
                "{{pod}}",
            ),
        ]
    if flavour == "seldon-v1":
        sel = f'{_NS}, deployment_name=~"$deployment"'
        metric = "seldon_api_executor_server_requests_seconds"
        client = "seldon_api_executor_client_requests_seconds"
        return [
            Query(
                "Requests by status",
                f"sum by (deployment_name, code) (rate({metric}_count{{{sel}}}{_RATE}))",
                "reqps",
                "{{deployment_name}} {{code}}",
            ),
            Query(
                "Error ratio (non-2xx)",
                f'sum(rate({metric}_count{{{sel}, code!~"2.."}}{_RATE})) '
                f"/ sum(rate({metric}_count{{{sel}}}{_RATE}))",
                "percentunit",
                "errors",
            ),
            *[
                Query(
                    f"Latency p{q}",
                    f"histogram_quantile(0.{q}, sum by (deployment_name, le) "
                    f"(rate({metric}_bucket{{{sel}}}{_RATE})))",
                    "s",
                    "{{deployment_name}}",
                )
                for q in ("50", "90", "99")
            ],
            Query(
                "Executor → model latency p99",
                f"histogram_quantile(0.99, sum by (model_name, le) "
                f"(rate({client}_bucket{{{sel}}}{_RATE})))",
                "s",
                "{{model_name}}",
                "time spent in the model container",
            ),
        ]
    if flavour == "seldon-v2":
        sel = f'{_NS}, model=~"$model"'
        return [
            Query(
                "Inferences by status",
                f"sum by (model, code) (rate(seldon_model_infer_total{{{sel}}}{_RATE}))",
                "reqps",
                "{{model}} {{code}}",
            ),
            Query(
                "Error ratio (non-2xx/OK)",
                f'sum(rate(seldon_model_infer_total{{{sel}, code!~"2..|OK"}}{_RATE})) '
                f"/ sum(rate(seldon_model_infer_total{{{sel}}}{_RATE}))",
                "percentunit",
                "errors",
            ),
            Query(
                "Mean inference latency",
                f"sum by (model) (rate(seldon_model_infer_seconds_total{{{sel}}}{_RATE})) "
                f"/ sum by (model) (rate(seldon_model_infer_total{{{sel}}}{_RATE}))",
                "s",
                "{{model}}",
            ),
            Query(
                "Agent latency p99",
                f"histogram_quantile(0.99, sum by (server, le) "
                f"(rate(seldon_model_infer_api_seconds_bucket{{{_NS}}}{_RATE})))",
                "s",
                "{{server}}",
            ),
            Query(
                "Loaded models",
                f"sum by (server) (seldon_loaded_model_gauge{{{_NS}}})",
                "short",
                "{{server}}",
            ),
        ]
    raise ConfigError(f"no metric set {flavour!r}; known: {', '.join(FLAVOURS)}")


def query_table(flavours: Iterable[Flavour] = FLAVOURS) -> pd.DataFrame:
    """Every query of the chosen metric sets as a table: set, title, unit, PromQL."""
    import pandas as pd

    return pd.DataFrame(
        [
            {"metrics": f, "panel": q.title, "unit": q.unit, "promql": q.expr}
            for f in flavours
            for q in queries(f)
        ]
    )


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
    if any(f in ("mlserver", "seldon-v2") for f in flavours):
        source = (
            "label_values(model_infer_request_success_total, model)"
            if "mlserver" in flavours
            else "label_values(seldon_model_infer_total, model)"
        )
        found.append(_query_variable("model", source, ds))
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
    flavours: Iterable[Flavour] = ("mlserver", "seldon-v1", "seldon-v2"),
) -> dict[str, Path]:
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
    return {"dashboard": board, "queries": listing}


# -- a structural PromQL check (no parser dependency) --------------------------------------------

_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or"}
_KEYWORDS |= {"unless", "offset", "atan2"}
_GROUPING = {"by", "without", "on", "ignoring", "group_left", "group_right"}
_FUNCTIONS = {
    "sum",
    "avg",
    "min",
    "max",
    "count",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "quantile",
    "count_values",
    "group",
    "rate",
    "irate",
    "increase",
    "delta",
    "idelta",
    "deriv",
    "histogram_quantile",
    "label_replace",
    "label_join",
    "abs",
    "ceil",
    "floor",
    "round",
    "clamp",
    "clamp_min",
    "clamp_max",
    "vector",
    "scalar",
    "time",
    "absent",
    "absent_over_time",
    "avg_over_time",
    "sum_over_time",
    "max_over_time",
    "min_over_time",
    "count_over_time",
    "quantile_over_time",
    "last_over_time",
    "sort",
    "sort_desc",
    "resets",
    "changes",
    "exp",
    "ln",
    "log2",
    "log10",
    "sqrt",
}
_OPENING = frozenset("({[")
_CLOSING = {")": "(", "}": "{", "]": "["}
_TOKEN = re.compile(
    r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|\$\{?\w+\}?|[A-Za-z_:][\w:]*|\d+(?:\.\d+)?[smhdwy]?|'
    r"=~|!~|!=|==|<=|>=|[(){}\[\],=+\-*/^%<>]|\s+|."
)


def check_promql(expr: str, known: set[str] | None = None) -> list[str]:
    """Problems found in ``expr``: unbalanced brackets, unterminated strings, unknown names.

    Not a full parser: it tokenizes, checks that ``()``, ``{}`` and ``[]`` nest properly, that
    every function is a PromQL function and that every metric name is in ``known`` (default:
    :func:`metric_names`). Grafana variables (``$model``, ``$__rate_interval``) are accepted.
    """
    known = metric_names() if known is None else known
    problems: list[str] = []
    stack: list[str] = []
    words = [w for w in _TOKEN.findall(expr) if not w.isspace()]
    grouping = False  # inside the label list of ``by (...)``, ``on (...)`` and the like
    for i, word in enumerate(words):
        following = words[i + 1] if i + 1 < len(words) else ""
        if word[0] in "\"'":
            if len(word) < 2 or word[-1] != word[0]:
                problems.append(f"unterminated string {word!r}")
            continue
        if word in _OPENING:
            stack.append(word)
            continue
        if word in _CLOSING:
            if not stack or stack[-1] != _CLOSING[word]:
                problems.append(f"unbalanced {word!r} at token {i}")
                return problems
            stack.pop()
            grouping = False
            continue
        if not re.fullmatch(r"[A-Za-z_:][\w:]*", word):
            continue  # numbers, durations, operators, Grafana variables
        if (stack and stack[-1] in "{[") or grouping:
            continue  # label names and values, durations, grouping labels
        if word in _GROUPING and following == "(":
            grouping = True
        elif word in _KEYWORDS:
            continue
        elif following == "(" or (word in _FUNCTIONS and following in ("by", "without")):
            if word not in _FUNCTIONS:
                problems.append(f"unknown function {word!r}")
        elif word not in known:
            problems.append(f"unknown metric {word!r}")
    if stack:
        problems.append(f"unclosed {''.join(stack)!r}")
    return problems

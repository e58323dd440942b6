"""The PromQL behind the Grafana dashboard, per metric set (Grafana's variables left in place)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlops_kit.errors import ConfigError
from mlops_kit.verify.monitoring.metrics import FLAVOURS, Flavour

if TYPE_CHECKING:
    import pandas as pd


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
                _ratio(
                    f'sum(rate(rest_server_requests_total{{{sel}, status_code!~"2.."}}{_RATE}))',
                    f"sum(rate(rest_server_requests_total{{{sel}}}{_RATE}))",
                ),
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
    if flavour == "mlops-kit":
        sel = f'{_NS}, model=~"$model", version=~"$version"'
        count = f"mlops_kit_inferences_total{{{sel}}}"
        return _by_version(
            requests=f"sum by (version) (rate({count}{_RATE}))",
            errors=f'sum by (version) (rate(mlops_kit_inferences_total{{{sel}, outcome="error"}}'
            f"{_RATE}))",
            bucket=f"mlops_kit_inference_seconds_bucket{{{sel}}}",
            label="version",
            where="in the runtime",
        )
    if flavour == "seldon-v1":
        sel = f'{_NS}, deployment_name=~"$deployment"'
        metric = "seldon_api_executor_server_requests_seconds"
        client = "seldon_api_executor_client_requests_seconds"
        versioned = f'{sel}, predictor_version=~"$version"'
        return [
            *_by_version(
                requests=f"sum by (predictor_version) (rate({metric}_count{{{versioned}}}{_RATE}))",
                errors=f"sum by (predictor_version) "
                f'(rate({metric}_count{{{versioned}, code!~"2.."}}{_RATE}))',
                bucket=f"{metric}_bucket{{{versioned}}}",
                label="predictor_version",
                where="at the executor (predictors labelled with their version)",
            ),
            Query(
                "Requests by status",
                f"sum by (deployment_name, code) (rate({metric}_count{{{sel}}}{_RATE}))",
                "reqps",
                "{{deployment_name}} {{code}}",
            ),
            Query(
                "Error ratio (non-2xx)",
                _ratio(
                    f'sum(rate({metric}_count{{{sel}, code!~"2.."}}{_RATE}))',
                    f"sum(rate({metric}_count{{{sel}}}{_RATE}))",
                ),
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
                _ratio(
                    f'sum(rate(seldon_model_infer_total{{{sel}, code!~"2..|OK"}}{_RATE}))',
                    f"sum(rate(seldon_model_infer_total{{{sel}}}{_RATE}))",
                ),
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


REQUESTS_BY_VERSION = "Requests by version"
ERRORS_BY_VERSION = "Error ratio by version"
P99_BY_VERSION = "Latency p99 by version"
"""Titles of the panels the canary analysis evaluates (:mod:`.analysis`), in the sets that
have them (``mlops-kit`` on the local target, ``seldon-v1`` on Kubernetes)."""


def _ratio(part: str, whole: str) -> str:
    """``part / whole`` that is 0, not empty, while ``part`` has no series (no error yet)."""
    return f"({part} or {whole} * 0) / {whole}"


def _by_version(*, requests: str, errors: str, bucket: str, label: str, where: str) -> list[Query]:
    """The per-version panels a canary is judged by: traffic, error ratio, p99 latency."""
    legend = "{{" + label + "}}"
    return [
        Query(REQUESTS_BY_VERSION, requests, "reqps", legend, f"requests answered {where}"),
        Query(
            ERRORS_BY_VERSION,
            f"({errors} or {requests} * 0) / {requests}",
            "percentunit",
            legend,
            "share answered with a server error",
        ),
        Query(
            P99_BY_VERSION,
            f"histogram_quantile(0.99, sum by ({label}, le) (rate({bucket}{_RATE})))",
            "s",
            legend,
            f"time to answer {where}",
        ),
    ]


_VARIABLE = re.compile(r"\$(__rate_interval|namespace|model|version|deployment)\b")


def instantiate(expr: str, values: dict[str, str]) -> str:
    """``expr`` with the dashboard's variables replaced, as Grafana does before it asks.

    ``values`` maps variable names (``namespace``, ``model``, ``version``, ``deployment``,
    ``__rate_interval``) to what they stand for; one left unset matches anything (``.*``),
    Grafana's "All", except ``__rate_interval``, which must be given (e.g. ``"30s"``).
    """

    def value(match: re.Match[str]) -> str:
        name = match[1]
        if name == "__rate_interval" and name not in values:
            raise ConfigError("a query needs its rate interval ($__rate_interval), e.g. '30s'")
        return values.get(name, ".*")

    return _VARIABLE.sub(value, expr)


def by_title(flavour: Flavour, title: str) -> Query:
    """The query of ``flavour`` titled ``title``; ConfigError if the set has none."""
    for query in queries(flavour):
        if query.title == title:
            return query
    raise ConfigError(f"metric set {flavour!r} has no panel {title!r}")


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

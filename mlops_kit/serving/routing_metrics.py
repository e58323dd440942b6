"""Per-version Prometheus metrics of the routing model (:mod:`mlops_kit.serving.routing`).

A module of its own, made once per process (MLServer re-imports a runtime's module each time
it loads a model, and a metric registered twice is an error). Served on MLServer's metrics
endpoint with its own metrics. Every series carries ``model_name`` and ``model_version`` (the
version that answered) and ``role``: ``stable``, ``candidate`` (live traffic) or ``shadow``
(mirrored copies whose answers were discarded). These names and labels are what a canary's
analysis reads, from a scrape or through Prometheus:

- ``mlops_kit_routed_requests_total{model_name, model_version, role, outcome}``, ``outcome``
  ``ok``, ``error`` (the model failed: HTTP 500) or ``invalid`` (the request was bad: 422);
- ``mlops_kit_routed_request_duration_seconds{model_name, model_version, role}`` (histogram);
- ``mlops_kit_routed_prediction{model_name, model_version, role}`` (summary of each answer's
  mean first output, for prediction drift);
- ``mlops_kit_shadow_comparisons_total{model_name, model_version, result}``, ``result``
  ``agree``, ``disagree`` or ``error``;
- ``mlops_kit_routing_weight{model_name, model_version, role}``: the live weight in percent
  (a shadow's is its mirror percent).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, Summary

__all__ = ["COMPARISONS", "DURATION", "PREDICTIONS", "REQUESTS", "WEIGHT"]

_LABELS = ["model_name", "model_version", "role"]

REQUESTS = Counter(
    "mlops_kit_routed_requests",
    "Inference requests the routing model handed to a version, by outcome",
    [*_LABELS, "outcome"],
)
DURATION = Histogram(
    "mlops_kit_routed_request_duration_seconds",
    "Seconds a version took to answer a routed request",
    _LABELS,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
PREDICTIONS = Summary(
    "mlops_kit_routed_prediction",
    "Mean of the first output of each answer, by version (prediction drift)",
    _LABELS,
)
COMPARISONS = Counter(
    "mlops_kit_shadow_comparisons",
    "Mirrored requests whose shadow answer agreed with the live one, or not",
    ["model_name", "model_version", "result"],
)
WEIGHT = Gauge(
    "mlops_kit_routing_weight",
    "Percent of live traffic a version answers (a shadow: percent mirrored)",
    _LABELS,
)

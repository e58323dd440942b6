"""Prometheus metrics of the batching runtime, served on MLServer's metrics endpoint.

A module of their own, made once per process: MLServer re-imports a runtime's module each
time it loads a model version, and a metric registered twice is an error.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

__all__ = ["BATCH_FALLBACKS", "BATCH_REQUESTS"]

_LABELS = ["model_name", "model_version"]

BATCH_REQUESTS = Histogram(
    "mlops_kit_batch_requests",
    "Requests answered by one batched predict call",
    _LABELS,
    buckets=(2, 4, 8, 16, 32, 64, 128, 256),
)
"""Requests answered by each batched ``predict`` (2 and up); MLServer serves this registry
(prometheus_client's default) when ``parallel_workers`` is 0."""

BATCH_FALLBACKS = Counter(
    "mlops_kit_batch_fallbacks",
    "Batched predict calls that failed and were redone request by request",
    _LABELS,
)
"""Batched ``predict`` calls that raised (or gave an output not split by rows) and were
redone request by request; exposed as ``mlops_kit_batch_fallbacks_total``."""

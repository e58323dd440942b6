"""Prometheus metrics of the batching runtime, served on MLServer's metrics endpoint.

A module of their own, made once per process: MLServer re-imports a runtime's module each
time it loads a model version, and a metric registered twice is an error.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

__all__ = ["BATCH_FALLBACKS", "BATCH_REQUESTS", "INFERENCES", "INFERENCE_SECONDS", "observe"]

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

_VERSION_LABELS = ["model", "version"]

INFERENCES = Counter(
    "mlops_kit_inferences",
    "Inference requests answered, by the version that answered and how",
    [*_VERSION_LABELS, "outcome"],
)
"""Requests each version answered: ``outcome`` is ``ok``, ``invalid`` (the caller's fault,
a 4xx) or ``error`` (the model's fault, a 5xx); exposed as ``mlops_kit_inferences_total``.
The canary analysis' request and error counts, per version."""

INFERENCE_SECONDS = Histogram(
    "mlops_kit_inference_seconds",
    "Seconds a version took to answer an inference request, in the runtime",
    _VERSION_LABELS,
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
"""Time from a request reaching a version's runtime to its answer; the canary analysis' p99,
per version (MLServer's own histogram has no version label)."""


OUTCOMES = ("ok", "invalid", "error")
_seen: set[tuple[str, str]] = set()


def observe(model: str, version: str, outcome: str, seconds: float) -> None:
    """Count one answered request of ``model`` ``version`` and how long it took.

    A version's first request creates its series for every outcome, at 0: ``rate()`` cannot
    count what a series held at its first sample, so a first error would go unseen.
    """
    if (model, version) not in _seen:
        _seen.add((model, version))
        for each in OUTCOMES:
            INFERENCES.labels(model=model, version=version, outcome=each)
    INFERENCES.labels(model=model, version=version, outcome=outcome).inc()
    INFERENCE_SECONDS.labels(model=model, version=version).observe(seconds)

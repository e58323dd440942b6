"""Reading a server's ``/metrics``: scrapes, and the server's side of a load test between two.

Latency quantiles are estimated from histogram buckets the way PromQL's ``histogram_quantile``
does.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mlops_kit.errors import MetricsUnavailable


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
    """Read the Prometheus text exposition at ``url``; MetricsUnavailable if it cannot be read."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    try:
        with httpx.Client(timeout=timeout, trust_env=False) as client:
            response = client.get(url)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        raise MetricsUnavailable(url, str(exc)) from exc
    samples = []
    try:
        for family in text_string_to_metric_families(response.text):
            for s in family.samples:
                samples.append((s.name, tuple(sorted(s.labels.items())), float(s.value)))
    except ValueError as exc:
        raise MetricsUnavailable(url, f"not Prometheus text format: {exc}") from exc
    return MetricsSnapshot(url, time.time(), tuple(samples))


def bucket_delta(
    before: MetricsSnapshot, after: MetricsSnapshot, name: str, **match: str
) -> dict[float, float]:
    """Cumulative bucket counts ``{le: count}`` of the histogram ``name`` between two scrapes,
    summed over the matching series: what :func:`histogram_quantile` reads."""
    buckets: dict[float, float] = {}
    for snapshot, sign in ((after, 1.0), (before, -1.0)):
        for labels, value in snapshot.series(name, **match):
            bound = float(labels["le"])
            buckets[bound] = buckets.get(bound, 0.0) + sign * value
    return buckets


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
    buckets = bucket_delta(before, after, "rest_server_request_duration_seconds_bucket", **infer)

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

"""The ``load_test:`` settings section: the bounds every load test keeps and its objectives.

A section of :class:`mlops_kit.settings.Settings` (variables ``MLOPS_KIT_LOAD_TEST__*``), kept
in its own module so the settings module stays one screenful per concern.
"""

from __future__ import annotations

from pydantic import ConfigDict, Field

from mlops_kit.settings_base import Section as _Section


class LoadLimits(_Section):
    """Hard bounds no load test may exceed, whatever it is asked."""

    model_config = ConfigDict(frozen=True)

    max_users: int = Field(default=100, ge=1, le=10_000)
    """Simulated users (concurrent connections) one load test may run, at most."""
    max_duration_s: float = Field(default=300.0, gt=0, le=3600)
    """Seconds of load, at most."""
    max_requests: int = Field(default=500_000, ge=1, le=10_000_000)
    """Requests one load test may send in all, at most."""
    request_timeout_s: float = Field(default=5.0, gt=0, le=60)
    """Seconds a request may take before it counts as an error (connect and read alike)."""


class Slo(_Section):
    """Service-level objectives a load test is judged against."""

    model_config = ConfigDict(frozen=True)

    p99_ms: float = Field(default=250.0, gt=0)
    """99th percentile latency of successful requests, at most, in milliseconds."""
    max_error_rate: float = Field(default=0.01, ge=0.0, le=1.0)
    """Share of requests that fail (non-2xx or no answer), at most."""
    min_rps: float = Field(default=10.0, ge=0.0)
    """Completed requests per second, at least."""


class LoadTestSettings(_Section):
    """Bounds every load test stays within, and the objectives it is judged against."""

    limits: LoadLimits = Field(default_factory=LoadLimits)
    """Hard bounds of every run (users, duration, requests, request timeout)."""
    slo: Slo = Field(default_factory=Slo)
    """Objectives a run is judged against; notebook and CLI parameters override them."""
    allow_remote: bool = False
    """Allow load tests against hosts other than loopback — only systems you may load."""

"""The ``monitor:`` settings section: the local Prometheus, and where a cluster's Prometheus is.

A section of :class:`mlops_kit.settings.Settings` (variables ``MLOPS_KIT_MONITOR__*``), kept in
its own module so the settings module stays one screenful per concern.
"""

from __future__ import annotations

from pydantic import Field

from mlops_kit.settings_base import Section as _Section


class MonitorSettings(_Section):
    """The metrics store: a Prometheus on loopback (``mlops-kit monitor``), or a cluster's."""

    scrape_interval_s: float = Field(default=1.0, ge=0.5, le=60)
    """Seconds between two scrapes of every local endpoint (short: a canary step is short)."""
    retention: str = Field(default="2d", pattern=r"^[0-9]+(ms|s|m|h|d|w|y)$")
    """How long the local Prometheus keeps samples (its ``--storage.tsdb.retention.time``)."""
    binary: str = "prometheus"
    """The Prometheus program: a name looked up on ``PATH`` (Debian's ``prometheus``) or a path."""
    start_timeout_s: float = Field(default=30.0, gt=0, le=600)
    """Seconds the local Prometheus may take to answer ``/-/ready`` after it is started."""
    prometheus_url: str | None = None
    """A Prometheus to query instead of the local one, e.g. the cluster's
    (``http://prometheus.monitoring:9090``); the Kubernetes target's canary analysis reads it."""

"""A rollout step's analysis: per-version figures over a window, judged against the limits.

The figures come from a :class:`MetricsSource` (:func:`metrics_source` picks it):

- :class:`ScrapeSource` reads the local endpoint's own ``/metrics`` at the start and at the end
  of the window (the routing model's per-version series,
  :mod:`mlops_kit.serving.routing_metrics`);
- :class:`StoredSource` takes requests, errors and p99 from the local Prometheus, with the
  dashboard's own PromQL, where one runs;
- :class:`ClusterSource` asks a cluster's Prometheus (``monitor.prometheus_url``) the same
  questions over the cluster's serving metrics;
- :class:`~mlops_kit.promote.cloudwatch.CloudWatchSource` reads what SageMaker publishes to
  CloudWatch per variant.

Whichever answers, the verdict is the same function: :func:`judge`.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal, Protocol

from mlops_kit.errors import TargetError
from mlops_kit.verify.monitoring.scrape import (
    MetricsSnapshot,
    bucket_delta,
    histogram_quantile,
    scrape,
)

if TYPE_CHECKING:
    from mlops_kit.project import Project
    from mlops_kit.settings_rollout import Analysis, RolloutSettings
    from mlops_kit.verify.monitoring.analysis import PrometheusMetrics

Role = Literal["stable", "candidate", "shadow"]
Outcome = Literal["pass", "fail", "inconclusive"]

REQUESTS = "mlops_kit_routed_requests_total"
DURATION = "mlops_kit_routed_request_duration_seconds"
PREDICTION = "mlops_kit_routed_prediction"
COMPARISONS = "mlops_kit_shadow_comparisons_total"


@dataclass(frozen=True)
class VersionFigures:
    """What one version did in one role over a window."""

    version: str
    role: str
    seconds: float = 0.0
    requests: int = 0
    """Requests handed to the version (answered, failed or refused as invalid)."""
    errors: int = 0
    """Requests the version failed (HTTP 500); a client's bad request is not counted."""
    p99_ms: float | None = None
    mean_prediction: float | None = None
    """Mean of the answers' first output (for prediction drift)."""
    agree: int = 0
    """Shadow only: mirrored answers equal to the live ones."""
    disagree: int = 0
    """Shadow only: mirrored answers that differed (a failed shadow counts as an error)."""
    source: str = "endpoint"
    """Where the figures come from: ``endpoint`` (its ``/metrics``), a Prometheus URL or
    ``cloudwatch`` (SageMaker's per-variant metrics)."""

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    @property
    def agreement(self) -> float | None:
        """Shadow only: share of mirrored requests whose answer equalled the live one."""
        compared = self.agree + self.disagree + self.errors
        return self.agree / compared if compared else None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["error_rate"] = round(self.error_rate, 4)
        data["seconds"] = round(self.seconds, 2)
        for key in ("p99_ms", "mean_prediction"):
            if data[key] is not None:
                data[key] = round(data[key], 3)
        if self.role == "shadow":
            agreement = self.agreement
            data["agreement"] = None if agreement is None else round(agreement, 4)
        return data


class MetricsSource(Protocol):
    """Where a rollout's analysis reads per-version figures from.

    ``begin`` opens a window on the environment's endpoint of ``model_name``; ``metrics_for``
    returns what ``version`` did in ``role`` (``stable``, ``candidate`` or ``shadow``) since.
    Implementations read the series of :mod:`mlops_kit.serving.routing_metrics`.
    """

    def begin(self, environment: str, model_name: str) -> None: ...

    def metrics_for(
        self, environment: str, model_name: str, version: str, role: str
    ) -> VersionFigures: ...


@dataclass
class ScrapeSource:
    """Reads the endpoint's ``/metrics`` directly: one scrape at ``begin``, one per question."""

    project: Project
    _start: dict[tuple[str, str], MetricsSnapshot] = field(default_factory=dict)

    def _url(self, environment: str, model_name: str) -> str:
        from mlops_kit import targets

        target = targets.for_environment(self.project.settings, environment)
        status = target.status(model_name)
        if status is None or not status.metrics_url:
            raise TargetError(
                f"{environment}/{model_name} has no metrics endpoint to analyse a rollout with"
            )
        return status.metrics_url

    def begin(self, environment: str, model_name: str) -> None:
        self._start[(environment, model_name)] = scrape(self._url(environment, model_name))

    def metrics_for(
        self, environment: str, model_name: str, version: str, role: str
    ) -> VersionFigures:
        before = self._start[(environment, model_name)]
        after = scrape(before.url)
        return figures(before, after, model_name, version, role)


def figures(
    before: MetricsSnapshot, after: MetricsSnapshot, model_name: str, version: str, role: str
) -> VersionFigures:
    """What ``version`` did in ``role`` between two scrapes of the routing model's server."""
    match = {"model_name": model_name, "model_version": version}

    def delta(name: str, **extra: str) -> float:
        return after.total(name, **match, **extra) - before.total(name, **match, **extra)

    p99 = histogram_quantile(
        0.99, bucket_delta(before, after, DURATION + "_bucket", **match, role=role)
    )
    count = delta(PREDICTION + "_count", role=role)
    mean = delta(PREDICTION + "_sum", role=role) / count if count > 0 else None
    shadow = role == "shadow"
    return VersionFigures(
        version=version,
        role=role,
        seconds=after.taken_at - before.taken_at,
        requests=round(delta(REQUESTS, role=role)),
        errors=round(delta(REQUESTS, role=role, outcome="error")),
        p99_ms=None if p99 is None or math.isinf(p99) else p99 * 1000.0,
        mean_prediction=mean,
        agree=round(delta(COMPARISONS, result="agree")) if shadow else 0,
        disagree=round(delta(COMPARISONS, result="disagree")) if shadow else 0,
    )


@dataclass
class StoredSource:
    """Requests, errors and p99 from Prometheus, with the Grafana dashboard's own per-version
    queries (:class:`~mlops_kit.verify.monitoring.analysis.PrometheusMetrics`); the prediction
    means and shadow comparisons, which only the routing model counts, from its endpoint.

    Prometheus sees a scrape interval late and discovers a new endpoint within seconds: a
    window shorter than four scrape intervals, or one in which Prometheus has no sample of a
    version the endpoint already counted, is judged on the endpoint's own figures.
    """

    project: Project
    stored: PrometheusMetrics
    scrape: ScrapeSource
    min_window: float

    def begin(self, environment: str, model_name: str) -> None:
        self.scrape.begin(environment, model_name)

    def metrics_for(
        self, environment: str, model_name: str, version: str, role: str
    ) -> VersionFigures:
        local = self.scrape.metrics_for(environment, model_name, version, role)
        if role == "shadow" or local.seconds < self.min_window:
            return local
        seen = self.stored.metrics_for(environment, version, local.seconds)
        if seen.requests == 0 and local.requests > 0:
            return local
        return replace(
            local,
            requests=seen.requests,
            errors=seen.errors,
            p99_ms=seen.p99_ms,
            source=seen.source,
        )


@dataclass
class ClusterSource:
    """A cluster's own Prometheus, nothing else: the dashboard's per-version PromQL over the
    serving stack's metrics (Seldon v1's executor, its predictors labelled with their version),
    over the window since :meth:`begin`.

    A cluster's endpoints are not this machine's to scrape, so there is no fallback: the
    window must span a few of that Prometheus' scrape intervals (``bake_seconds``). Prediction
    means and shadow agreement are the routing model's own series, which Seldon does not have:
    they stay unknown and are not judged.
    """

    stored: PrometheusMetrics
    _start: dict[tuple[str, str], float] = field(default_factory=dict)

    def begin(self, environment: str, model_name: str) -> None:
        self._start[(environment, model_name)] = time.monotonic()

    def metrics_for(
        self, environment: str, model_name: str, version: str, role: str
    ) -> VersionFigures:
        window = time.monotonic() - self._start[(environment, model_name)]
        seen = self.stored.metrics_for(environment, version, window)
        return VersionFigures(
            version=version,
            role=role,
            seconds=window,
            requests=seen.requests,
            errors=seen.errors,
            p99_ms=seen.p99_ms,
            source=seen.source,
        )


def metrics_source(project: Project, environment: str) -> MetricsSource:
    """Where a rollout in ``environment`` is judged from.

    On the local target: Prometheus where one runs (``mlops-kit monitor`` or
    ``monitor.prometheus_url``), else the endpoints' own ``/metrics``. On SageMaker:
    CloudWatch's per-variant metrics. On Kubernetes: the cluster's Prometheus
    (``monitor.prometheus_url``; ConfigError without one).
    """
    from mlops_kit.verify.monitoring.analysis import prometheus_for

    if project.settings.environment(environment).target == "sagemaker":
        from mlops_kit.promote.cloudwatch import CloudWatchSource

        return CloudWatchSource(project)
    stored = prometheus_for(project, environment)
    if project.settings.environment(environment).target != "local":
        assert stored is not None  # a cluster's Prometheus, or ConfigError
        return ClusterSource(stored)
    if stored is None:
        return ScrapeSource(project)
    interval = project.settings.monitor.scrape_interval_s
    return StoredSource(project, stored, ScrapeSource(project), min_window=4 * interval)


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    reasons: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {"outcome": self.outcome, "reasons": list(self.reasons)}


def judge(rollout: RolloutSettings, stable: VersionFigures, candidate: VersionFigures) -> Verdict:
    """Pass, fail or inconclusive, with every reason.

    Too few candidate requests is inconclusive, unless the errors already seen break the
    error-rate limit however the missing requests would go: that fails at once.
    """
    rules: Analysis = rollout.analysis
    reasons: list[str] = []
    enough = candidate.requests >= rules.min_requests
    allowed_errors = rules.max_error_rate * max(candidate.requests, rules.min_requests)
    if candidate.errors > allowed_errors:
        reasons.append(
            f"error rate {candidate.error_rate:.1%} ({candidate.errors} of {candidate.requests}) "
            f"above {rules.max_error_rate:.1%}"
        )
    if candidate.p99_ms is not None and candidate.p99_ms > rules.max_p99_ms:
        reasons.append(f"p99 {candidate.p99_ms:.0f} ms above {rules.max_p99_ms:.0f} ms")
    drift = prediction_drift(stable, candidate)
    limit = rules.max_prediction_drift
    if enough and drift is not None and limit is not None and drift > limit:
        reasons.append(
            f"prediction drift {drift:.2f} above {limit:.2f} "
            f"(mean {candidate.mean_prediction:.3f} vs {stable.mean_prediction:.3f})"
        )
    if candidate.role == "shadow" and enough:
        agreement = candidate.agreement
        if agreement is not None and agreement < rollout.min_agreement:
            reasons.append(f"agreement {agreement:.1%} below {rollout.min_agreement:.1%}")
    if reasons:
        return Verdict("fail", reasons)
    if not enough:
        return Verdict(
            "inconclusive",
            [f"{candidate.requests} candidate requests, fewer than {rules.min_requests}"],
        )
    return Verdict("pass", [])


def prediction_drift(stable: VersionFigures, candidate: VersionFigures) -> float | None:
    """``|mean_c - mean_s| / max(|mean_s|, 1)``; None without both means."""
    if stable.mean_prediction is None or candidate.mean_prediction is None:
        return None
    scale = max(abs(stable.mean_prediction), 1.0)
    return abs(candidate.mean_prediction - stable.mean_prediction) / scale

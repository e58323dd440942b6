"""The ``rollout:`` settings of an environment: how a promotion hands it a new version.

A section of :class:`mlops_kit.settings.EnvironmentSettings`, kept in its own module so the
settings module stays one screenful per concern. ``replace`` is the classic promotion (the
candidate is verified privately, then replaces the live version at once); ``canary`` moves
live traffic to it step by step, judging each step by the endpoint's per-version metrics;
``shadow`` mirrors requests to it and compares its answers with the live ones before it takes
any traffic; ``blue_green`` loads it fully beside the live version, verifies it, and switches.
"""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, field_validator

from mlops_kit.settings_base import Section as _Section

Strategy = Literal["replace", "canary", "shadow", "blue_green"]


class Analysis(_Section):
    """What each canary step must show before the candidate gets more traffic.

    A step that breaks a limit fails; ``failure_limit`` failed steps roll the candidate back.
    A step with fewer than ``min_requests`` candidate requests proves nothing: the rollout
    pauses until a person continues or aborts it.
    """

    model_config = ConfigDict(frozen=True)

    max_error_rate: float = Field(default=0.01, ge=0.0, le=1.0)
    """Share of the candidate's requests that may fail (server errors), at most."""
    max_p99_ms: float = Field(default=500.0, gt=0)
    """99th percentile latency of the candidate's answers, at most, in milliseconds."""
    min_requests: int = Field(default=20, ge=0)
    """Candidate requests a step needs to be judged; fewer pauses the rollout."""
    max_prediction_drift: float | None = Field(default=None, ge=0.0)
    """Relative change of the candidate's mean prediction against the stable version's,
    at most (``|mean_c - mean_s| / max(|mean_s|, 1)``); None (the default) skips the check.
    Means of a few dozen answers move a lot by chance: set it where steps see hundreds."""
    failure_limit: int = Field(default=1, ge=1, le=100)
    """Failed analyses that roll the candidate back (1: the first failure does)."""


class RolloutSettings(_Section):
    """How a promotion moves this environment's traffic to the candidate."""

    model_config = ConfigDict(frozen=True)

    strategy: Strategy = "replace"
    """``replace`` (verify, then switch), ``canary``, ``shadow`` or ``blue_green``."""
    steps: list[int] = Field(default_factory=lambda: [10, 50, 100])
    """Canary: the candidate's percent of live traffic at each step, rising, ending at 100."""
    bake_seconds: float = Field(default=60.0, gt=0, le=86_400)
    """Seconds each canary step (and a shadow) runs before it is analysed."""
    analysis: Analysis = Field(default_factory=Analysis)
    """Limits a step is judged against."""
    sticky_header: str | None = None
    """Request header whose value pins a caller to one version during a canary."""
    mirror_percent: int = Field(default=100, ge=1, le=100)
    """Shadow: percent of live requests copied to the candidate."""
    min_agreement: float = Field(default=0.95, ge=0.0, le=1.0)
    """Shadow: share of mirrored requests whose answer must equal the live one."""

    @field_validator("steps")
    @classmethod
    def _rising_to_100(cls, steps: list[int]) -> list[int]:
        if not steps or steps[-1] != 100:
            raise ValueError("canary steps must end at 100")
        if any(not 0 < s <= 100 for s in steps) or steps != sorted(set(steps)):
            raise ValueError("canary steps must rise strictly, each between 1 and 100")
        return steps

"""The quality gate: a challenger must beat a floor and not regress against the champion."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from mlops_kit import display
from mlops_kit.errors import GateFailed
from mlops_kit.registry.client import Registry
from mlops_kit.train.training import TAG_PREFIX, score

if TYPE_CHECKING:
    from mlops_kit.project import Project
    from mlops_kit.settings import GateSettings
    from mlops_kit.train.training import Dataset


@dataclass(frozen=True)
class GateVerdict(display.Rich):
    """The gate's decision with the figures behind it."""

    passed: bool
    metric: str
    challenger_version: str
    challenger_value: float
    champion_version: str | None
    champion_value: float | None
    min_value: float
    max_regression: float
    reasons: list[str] = field(default_factory=list)

    @property
    def delta(self) -> float | None:
        """Challenger minus champion, or None with no champion."""
        if self.champion_value is None:
            return None
        return self.challenger_value - self.champion_value

    def summary(self) -> str:
        """One line: verdict, figures and reasons."""
        against = (
            f" vs champion v{self.champion_version} {self.metric}={self.champion_value:.4f}"
            if self.champion_version
            else " (no champion yet)"
        )
        head = "PASSED" if self.passed else "FAILED"
        tail = f": {'; '.join(self.reasons)}" if self.reasons else ""
        return (
            f"gate {head}: v{self.challenger_version} {self.metric}={self.challenger_value:.4f}"
            f"{against}{tail}"
        )

    def as_dict(self) -> dict[str, Any]:
        """Plain data, for evidence files and tags."""
        return {**asdict(self), "delta": self.delta}

    def raise_for_failure(self) -> None:
        """Raise GateFailed when the challenger did not pass."""
        if not self.passed:
            raise GateFailed(self.summary(), verdict=self)

    def _repr_html_(self) -> str:
        rows = [
            {"": "challenger", "version": f"v{self.challenger_version}",
             self.metric: f"{self.challenger_value:.4f}"},
            {"": "champion", "version": f"v{self.champion_version}" if self.champion_version
             else "none yet",
             self.metric: "–" if self.champion_value is None else f"{self.champion_value:.4f}"},
        ]  # fmt: skip
        rules = f"Floor {self.min_value:.4f}; at most {self.max_regression:.4f} below the champion."
        return (
            display.verdict(self.passed, self.summary()) + display.table(rows) + (f"<p>{rules}</p>")
        )

    def _figure_(self) -> display.Figure:
        return display.Figure("quality gate", self.summary(), self.passed)


def decide(
    gates: GateSettings,
    challenger: tuple[str, float],
    champion: tuple[str, float] | None,
) -> GateVerdict:
    """Apply the thresholds to measured values; pure, so the rule is easy to test."""
    version, value = challenger
    reasons = []
    if value < gates.min_value:
        reasons.append(f"{gates.metric} {value:.4f} is below the floor {gates.min_value:.4f}")
    if champion is not None and value < champion[1] - gates.max_regression:
        reasons.append(
            f"{gates.metric} regressed by {champion[1] - value:.4f}, more than the allowed "
            f"{gates.max_regression:.4f}"
        )
    return GateVerdict(
        passed=not reasons,
        metric=gates.metric,
        challenger_version=version,
        challenger_value=value,
        champion_version=champion[0] if champion else None,
        champion_value=champion[1] if champion else None,
        min_value=gates.min_value,
        max_regression=gates.max_regression,
        reasons=reasons,
    )


def evaluate_gate(
    project: Project,
    challenger_version: str | int,
    data: Dataset,
    *,
    champion_aliases: tuple[str, ...] = ("production", "staging"),
    record: bool = True,
) -> GateVerdict:
    """Score challenger and champion on the same held-out data and decide.

    The champion is the version under the first alias of ``champion_aliases`` that is set and
    is not the challenger itself. The verdict is recorded as tags on the challenger version.
    """
    registry = Registry(project)
    gates = project.settings.gates
    challenger = str(challenger_version)
    value = score(registry.load_model(challenger), data.X_test, data.y_test)[gates.metric]
    champion = None
    for alias in champion_aliases:
        found = registry.by_alias(alias)
        if found is not None and found.version != challenger:
            champ_model = registry.load_model(found.version)
            champion = (found.version, score(champ_model, data.X_test, data.y_test)[gates.metric])
            break
    verdict = decide(gates, (challenger, value), champion)
    if record:
        registry.tag(
            challenger,
            {
                f"{TAG_PREFIX}gate.verdict": "passed" if verdict.passed else "failed",
                f"{TAG_PREFIX}gate.metric": verdict.metric,
                f"{TAG_PREFIX}gate.value": f"{verdict.challenger_value:.6f}",
                f"{TAG_PREFIX}gate.champion": verdict.champion_version or "none",
                f"{TAG_PREFIX}gate.detail": verdict.summary(),
            },
        )
    return verdict

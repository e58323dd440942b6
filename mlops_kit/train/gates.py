"""The quality gate: a challenger must beat a floor and not regress against the champion.

A champion is comparable only with the same input columns: a challenger trained on other data
under the same model name fails with a verdict naming the columns added, removed or retyped,
unless the champion is reset on purpose (``reset_champion``: gate against no champion).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from mlops_kit import display
from mlops_kit.errors import GateFailed, ParameterError, SchemaMismatch
from mlops_kit.registry.client import Registry
from mlops_kit.settings_training import GateRule, GateSettings
from mlops_kit.train.metrics import evaluate
from mlops_kit.train.schema import RESET_HINT, SchemaChange, compare, input_columns
from mlops_kit.train.training import TAG_PREFIX

if TYPE_CHECKING:
    from mlops_kit.project import Project
    from mlops_kit.train.data import Dataset


@dataclass(frozen=True)
class GateVerdict(display.Rich):
    """The gate's decision with the figures behind it."""

    passed: bool
    metric: str
    challenger_version: str
    challenger_value: float
    champion_version: str | None
    champion_value: float | None
    min_value: float | None
    """The threshold: a floor when higher is better, a ceiling when lower is better; None: none."""
    max_regression: float
    reasons: list[str] = field(default_factory=list)
    schema_change: SchemaChange | None = None
    """How the challenger's input columns differ from the champion's (then it is not scored)."""
    champion_reset: bool = False
    """Gated against no champion on purpose (``reset_champion``)."""
    direction: str = "higher"
    """Whether a ``higher`` or ``lower`` value of ``metric`` is better."""

    @property
    def delta(self) -> float | None:
        """Challenger minus champion, or None with no champion."""
        if self.champion_value is None:
            return None
        return self.challenger_value - self.champion_value

    def summary(self) -> str:
        """One line: verdict, figures and reasons."""
        if self.champion_value is not None:
            against = (
                f" vs champion v{self.champion_version} {self.metric}={self.champion_value:.4f}"
            )
        elif self.champion_version:
            against = f" vs champion v{self.champion_version}"
        elif self.champion_reset:
            against = " (champion reset: gated against no champion)"
        else:
            against = " (no champion yet)"
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
        lower = self.direction == "lower"
        bound = (
            "No threshold"
            if self.min_value is None
            else f"{'Ceiling' if lower else 'Floor'} {self.min_value:.4f}"
        )
        rules = (
            f"{bound}; at most {self.max_regression:.4f} {'above' if lower else 'below'} the "
            f"champion ({'lower' if lower else 'higher'} is better)."
        )
        return (
            display.verdict(self.passed, self.summary()) + display.table(rows) + (f"<p>{rules}</p>")
        )

    def _figure_(self) -> display.Figure:
        return display.Figure("quality gate", self.summary(), self.passed)


def decide(
    gates: GateSettings | GateRule,
    challenger: tuple[str, float],
    champion: tuple[str, float] | None,
    *,
    schema_change: SchemaChange | None = None,
    champion_reset: bool = False,
) -> GateVerdict:
    """Apply the thresholds to measured values; pure, so the rule is easy to test.

    ``gates`` is the rule for the model's task (settings are resolved for the task of their
    metric). A ``schema_change`` fails the challenger: a champion with other input columns
    cannot be compared with it (``champion`` is then None, not scored).
    """
    rule = gates if isinstance(gates, GateRule) else _rule(gates)
    metric = rule.metric
    version, value = challenger
    reasons = []
    if schema_change:
        reasons.append(f"{schema_change.summary()}; {RESET_HINT}")
    if rule.misses_threshold(value):
        side = "below the floor" if rule.higher_is_better else "above the ceiling"
        reasons.append(f"{metric} {value:.4f} is {side} {rule.threshold:.4f}")
    if champion is not None and rule.regression(value, champion[1]) > rule.max_regression:
        reasons.append(
            f"{metric} regressed by {rule.regression(value, champion[1]):.4f}, more than the "
            f"allowed {rule.max_regression:.4f}"
        )
    champion_version = champion[0] if champion else None
    if schema_change:
        champion_version = schema_change.champion_version
    return GateVerdict(
        passed=not reasons,
        metric=metric,
        challenger_version=version,
        challenger_value=value,
        champion_version=champion_version,
        champion_value=champion[1] if champion else None,
        min_value=rule.threshold,
        max_regression=rule.max_regression,
        reasons=reasons,
        schema_change=schema_change or None,
        champion_reset=champion_reset,
        direction=rule.direction,
    )


def _rule(gates: GateSettings) -> GateRule:
    from mlops_kit.settings_training import task_of_metric

    return gates.rule(task_of_metric(gates.metric) if gates.metric else "classification")


def evaluate_gate(
    project: Project,
    challenger_version: str | int,
    data: Dataset,
    *,
    champion_aliases: tuple[str, ...] = ("production", "staging"),
    record: bool = True,
    reset_champion: bool = False,
) -> GateVerdict:
    """Score challenger and champion on the same held-out data and decide.

    The champion is what the first environment of ``champion_aliases`` serves per the GitOps
    record (never a hand-moved alias) and is not the challenger itself. One whose input
    columns differ from the challenger's is not scored: the verdict fails, naming the change.
    ``reset_champion=True`` gates against no champion (after a deliberate change of data). The
    verdict is recorded as tags on the challenger version.
    """
    if not isinstance(reset_champion, bool):
        raise ParameterError("reset_champion", f"must be True or False, not {reset_champion!r}")
    registry = Registry(project)
    rule = project.settings.gates.rule(data.task)
    challenger = str(challenger_version)
    value = evaluate(registry.load_model(challenger), data)[rule.metric]
    found = None if reset_champion else _champion(project, challenger, champion_aliases)
    champion, change = None, None
    if found is not None:
        change = schema_change(registry, found, challenger)
        if not change:
            try:
                champ_model = registry.load_model(found)
                champion = (found, evaluate(champ_model, data)[rule.metric])
            except SchemaMismatch as exc:
                # No signature told the columns apart, but the champion refuses this data.
                change = SchemaChange(champion_version=found, refusal=str(exc))
    verdict = decide(
        rule, (challenger, value), champion, schema_change=change, champion_reset=reset_champion
    )
    return _recorded(registry, verdict) if record else verdict


def schema_change(registry: Registry, champion: str, challenger: str) -> SchemaChange | None:
    """How ``challenger``'s input columns differ from ``champion``'s; None if either has none."""
    before = input_columns(registry.local_path(champion))
    after = input_columns(registry.local_path(challenger))
    if before is None or after is None:
        return None
    return compare(champion, before, after)


def _champion(project: Project, challenger: str, aliases: tuple[str, ...]) -> str | None:
    """What the first of the environments ``aliases`` serves per the GitOps record.

    The record, not the registry alias: an alias moved by hand is drift, never a champion.
    """
    from mlops_kit.gitops.drift import served_version

    known = {e.name for e in project.settings.environments}
    for alias in aliases:
        version = served_version(project, alias) if alias in known else None
        if version is not None and version != challenger:
            return version
    return None


def _recorded(registry: Registry, verdict: GateVerdict) -> GateVerdict:
    champion = "reset" if verdict.champion_reset else verdict.champion_version or "none"
    if verdict.schema_change:
        schema = "changed"
    else:
        schema = "same" if verdict.champion_value is not None else "not compared"
    registry.tag(
        verdict.challenger_version,
        {
            f"{TAG_PREFIX}gate.verdict": "passed" if verdict.passed else "failed",
            f"{TAG_PREFIX}gate.metric": verdict.metric,
            f"{TAG_PREFIX}gate.value": f"{verdict.challenger_value:.6f}",
            f"{TAG_PREFIX}gate.champion": champion,
            f"{TAG_PREFIX}gate.schema": schema,
            f"{TAG_PREFIX}gate.detail": verdict.summary(),
        },
    )
    return verdict

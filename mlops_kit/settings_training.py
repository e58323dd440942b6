"""The ``training:`` and ``gates:`` settings sections: what to train on, with which code, and
the rule a new version must pass.

Sections of :class:`mlops_kit.settings.Settings` (variables ``MLOPS_KIT_TRAINING__*`` and
``MLOPS_KIT_GATES__*``), kept in their own module with the task and metric tables both use.
Training code is an *entrypoint* (``package.module:function``, docs/bring-your-own.md): the
built-in estimators are one, a team's own code another. Data is a scikit-learn bundled set
(``dataset``) or the team's own files (``data``), for a classification or regression task.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from mlops_kit.discovery import PATH_OR_URL
from mlops_kit.errors import ConfigError
from mlops_kit.settings_base import Section as _Section

TASKS = ("classification", "regression")
DATASETS = ("wine", "iris", "breast_cancer", "digits", "diabetes")
"""Datasets bundled with scikit-learn (nothing is downloaded); diabetes is a regression set."""
MODEL_TYPES = ("random_forest", "gradient_boosting", "logistic_regression", "ridge")
BUILTIN_ENTRYPOINT = "mlops_kit.train.builtin:fit"
"""The built-in estimators, as an entrypoint like any other."""
METRICS: dict[str, tuple[str, ...]] = {
    "classification": ("accuracy", "f1_macro", "precision_macro", "recall_macro"),
    "regression": ("r2", "rmse", "mae"),
}
"""The held-out metrics computed per task; the gate compares one of them."""
LOWER_IS_BETTER = frozenset({"rmse", "mae"})
"""Metrics where a smaller value is the better model (errors); the others: higher is better."""
DEFAULT_METRIC = {"classification": "accuracy", "regression": "r2"}
"""The gate's metric when ``gates.metric`` is not set."""
ENTRYPOINT_PATTERN = r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$"

Task = Literal["classification", "regression"]
Metric = Literal["accuracy", "f1_macro", "precision_macro", "recall_macro", "r2", "rmse", "mae"]


def task_of_metric(metric: str) -> str:
    """The task whose metrics include ``metric``."""
    return next(task for task, names in METRICS.items() if metric in names)


class DataSettings(_Section):
    """A team's own data: a table in CSV or Parquet files, one column the label."""

    path: Annotated[str, PATH_OR_URL]
    """A CSV or Parquet file, or a directory of them (read in name order, same columns): a
    path relative to the project file, or ``s3://bucket/key`` (read with the standard AWS
    configuration and ``AWS_ENDPOINT_URL``, as the artifact store is)."""
    target: str = "target"
    """The label column the model learns to predict."""
    columns: list[str] | None = None
    """Feature columns to use, in this order; None: every column but the target."""
    format: Literal["csv", "parquet"] | None = None
    """File format; None: from each file's suffix (``.csv``, ``.parquet``)."""


class TrainingSettings(_Section):
    """What to train: the data, the training code (an entrypoint) and its parameters."""

    dataset: Literal["wine", "iris", "breast_cancer", "digits", "diabetes"] = "wine"
    """A dataset that ships inside scikit-learn; nothing is downloaded. Unused when ``data`` is
    set."""
    data: DataSettings | None = None
    """The team's own data (CSV or Parquet, local or ``s3://``); None: the bundled ``dataset``."""
    task: Task | None = None
    """``classification`` or ``regression``; None: inferred from the target column (text,
    booleans or few whole numbers: classification; otherwise regression). A declared task is
    checked against the data and against ``gates.metric``."""
    entrypoint: str = Field(default=BUILTIN_ENTRYPOINT, pattern=ENTRYPOINT_PATTERN)
    """The training code, ``package.module:function``, imported from the project's directory.

    It is called as ``function(data, params)`` with the prepared data and ``params`` and
    returns a fitted model (scikit-learn, XGBoost, LightGBM or an ``mlflow.pyfunc.PythonModel``)
    or ``(model, extra_metrics)``; the toolkit tracks, registers and gates it
    (docs/bring-your-own.md). The default is the built-in estimators (``model_type``)."""
    params: dict[str, Any] = Field(default_factory=dict)
    """Parameters handed to the entrypoint (with ``random_state``); notebook and CLI
    parameters (``-p params='{alpha: 0.5}'``) are merged over them."""
    model_type: Literal["random_forest", "gradient_boosting", "logistic_regression", "ridge"] = (
        "random_forest"
    )
    """The built-in entrypoint's estimator family; a regressor for a regression task
    (``logistic_regression`` classifies only, ``ridge`` regresses only)."""
    n_estimators: int = Field(default=100, ge=1, le=5000)
    """Trees, for the ensemble model types."""
    max_depth: int | None = Field(default=None, ge=1, le=100)
    """Maximum tree depth; None grows trees fully."""
    test_size: float = Field(default=0.25, gt=0.0, lt=1.0)
    """Fraction of rows held out for evaluation and gating."""
    random_state: int = 42
    """Seed for the split and the estimator, so a rerun reproduces the same model."""

    @property
    def builtin(self) -> bool:
        """Whether the built-in estimators train (the default entrypoint)."""
        return self.entrypoint == BUILTIN_ENTRYPOINT

    def entrypoint_params(self) -> dict[str, Any]:
        """The ``params`` the entrypoint is called with.

        Every entrypoint gets ``random_state`` and ``params``; the built-in one also gets
        ``model_type``, ``n_estimators`` and ``max_depth``. ``params`` wins over the others.
        """
        base: dict[str, Any] = {"random_state": self.random_state}
        if self.builtin:
            base.update(
                model_type=self.model_type, n_estimators=self.n_estimators, max_depth=self.max_depth
            )
        return {**base, **self.params}


@dataclass(frozen=True)
class GateRule:
    """The gate's settings resolved for one task: metric, direction and bounds."""

    metric: str
    direction: Literal["higher", "lower"]
    threshold: float | None
    """A floor when higher is better, a ceiling when lower is better; None: no bound."""
    max_regression: float

    @property
    def higher_is_better(self) -> bool:
        """Whether a larger value is the better model."""
        return self.direction == "higher"

    def misses_threshold(self, value: float) -> bool:
        """Whether ``value`` falls on the wrong side of the threshold (NaN always does)."""
        if math.isnan(value):
            return True
        if self.threshold is None:
            return False
        return value < self.threshold if self.higher_is_better else value > self.threshold

    def regression(self, value: float, champion: float) -> float:
        """How much worse than the champion ``value`` is (negative: better)."""
        return champion - value if self.higher_is_better else value - champion


class GateSettings(_Section):
    """The quality gate a challenger must pass against the current champion."""

    metric: Metric | None = None
    """Metric computed on the held-out split for challenger and champion alike: ``accuracy``,
    ``f1_macro``, ``precision_macro``, ``recall_macro`` (classification), ``r2``, ``rmse``,
    ``mae`` (regression). None: ``accuracy`` for classification, ``r2`` for regression."""
    direction: Literal["higher", "lower"] | None = None
    """Whether a ``higher`` or ``lower`` value is better; None: from the metric (``rmse`` and
    ``mae`` lower, the others higher)."""
    min_value: float = Field(default=0.8, ge=0.0, le=1.0)
    """Absolute floor the challenger must reach, for a higher-is-better metric (a score
    between 0 and 1); ``threshold``, when set, replaces it."""
    threshold: float | None = None
    """The bound the challenger must reach, in the metric's units: at least it when higher is
    better, at most it when lower is better (``rmse: 60``); None: ``min_value`` when higher is
    better, no bound when lower is better."""
    max_regression: float = Field(default=0.02, ge=0.0)
    """How much worse than the champion the challenger may be and still pass, in the metric's
    units (below it when higher is better, above it when lower is better)."""

    @model_validator(mode="after")
    def _floor_for_an_error_metric(self) -> GateSettings:
        if (
            self.metric is not None
            and self._direction(self.metric) == "lower"
            and "min_value" in self.model_fields_set
            and self.threshold is None
        ):
            raise ValueError(
                f"min_value is a floor, but a lower {self.metric} is better: set threshold (the "
                f"largest {self.metric} that passes) instead"
            )
        return self

    def _direction(self, metric: str) -> Literal["higher", "lower"]:
        if self.direction is not None:
            return self.direction
        return "lower" if metric in LOWER_IS_BETTER else "higher"

    def rule(self, task: str) -> GateRule:
        """The rule for a model of ``task``; ConfigError when the metric is not of that task."""
        metric = self.metric or DEFAULT_METRIC[task]
        if metric not in METRICS[task]:
            raise ConfigError(
                f"invalid settings: gates.metric: {metric!r} is a {task_of_metric(metric)} "
                f"metric, but the model is trained for {task}; use one of "
                f"{', '.join(METRICS[task])}"
            )
        direction = self._direction(metric)
        threshold = self.threshold
        if threshold is None and direction == "higher":
            threshold = self.min_value
        return GateRule(metric, direction, threshold, self.max_regression)


def check_task(training: TrainingSettings, gates: GateSettings) -> None:
    """ValueError when the gate's metric does not fit a declared (or bundled) task."""
    task = training.task
    if task is None and training.data is None:
        task = "regression" if training.dataset == "diabetes" else "classification"
    if task is not None and gates.metric is not None and gates.metric not in METRICS[task]:
        raise ValueError(
            f"gates.metric: {gates.metric!r} is a {task_of_metric(gates.metric)} metric, but "
            f"training.task is {task}; use one of {', '.join(METRICS[task])}"
        )


__all__ = [
    "BUILTIN_ENTRYPOINT",
    "DATASETS",
    "DEFAULT_METRIC",
    "LOWER_IS_BETTER",
    "METRICS",
    "MODEL_TYPES",
    "TASKS",
    "DataSettings",
    "GateRule",
    "GateSettings",
    "TrainingSettings",
    "check_task",
    "task_of_metric",
]

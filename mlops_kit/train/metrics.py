"""Held-out metrics per task: what training logs, the gate compares and promotions show.

Classification: accuracy and macro-averaged F1, precision and recall. Regression: r2, rmse
(root mean squared error) and mae (mean absolute error), where lower errors are better
(:data:`~mlops_kit.settings_training.LOWER_IS_BETTER`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlops_kit.errors import SchemaMismatch
from mlops_kit.train.schema import schema_failure

if TYPE_CHECKING:
    import pandas as pd

    from mlops_kit.train.data import Dataset


def evaluate(model: Any, data: Dataset) -> dict[str, float]:
    """The metrics of ``data``'s task for ``model`` (anything with ``predict(X)``: an
    estimator or an MLflow pyfunc model) on ``data``'s held-out rows."""
    return score(model, data.X_test, data.y_test, data.task)


def score(
    model: Any, X: pd.DataFrame, y: pd.Series, task: str = "classification"
) -> dict[str, float]:
    """The metrics of ``task`` for ``model``'s predictions of ``X`` against ``y``.

    SchemaMismatch when ``X`` does not fit the model's input schema (its message has the
    reason, not MLflow's quote of the data).
    """
    try:
        predicted = model.predict(X)
    except Exception as exc:
        reason = schema_failure(exc)
        if reason is None:
            raise
        raise SchemaMismatch(reason) from None
    return metrics_of(y, predicted, task)


def metrics_of(y: Any, predicted: Any, task: str) -> dict[str, float]:
    """The metrics of ``task`` for ``predicted`` against the truth ``y``."""
    import numpy as np
    from sklearn import metrics

    predicted = np.asarray(predicted)
    if predicted.ndim == 2 and predicted.shape[1] == 1:
        predicted = predicted[:, 0]
    if task == "regression":
        return {
            "r2": float(metrics.r2_score(y, predicted)),
            "rmse": float(np.sqrt(metrics.mean_squared_error(y, predicted))),
            "mae": float(metrics.mean_absolute_error(y, predicted)),
        }
    return {
        "accuracy": float(metrics.accuracy_score(y, predicted)),
        "f1_macro": float(metrics.f1_score(y, predicted, average="macro")),
        "precision_macro": float(
            metrics.precision_score(y, predicted, average="macro", zero_division=0)
        ),
        "recall_macro": float(metrics.recall_score(y, predicted, average="macro", zero_division=0)),
    }


__all__ = ["evaluate", "metrics_of", "score"]

"""The built-in training entrypoint: scikit-learn estimators chosen by ``model_type``.

``mlops_kit.train.builtin:fit`` is the default ``training.entrypoint``; a team's own code
takes its place with the same signature (docs/bring-your-own.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlops_kit.errors import ParameterError

if TYPE_CHECKING:
    from mlops_kit.train.data import Dataset

CLASSIFIERS = ("random_forest", "gradient_boosting", "logistic_regression")
REGRESSORS = ("random_forest", "gradient_boosting", "ridge")


def fit(data: Dataset, params: dict[str, Any]) -> Any:
    """The estimator ``params`` describes for ``data``'s task, fitted on its training rows."""
    estimator = estimator_for(
        data.task,
        params.get("model_type", "random_forest"),
        n_estimators=params.get("n_estimators", 100),
        max_depth=params.get("max_depth"),
        random_state=params.get("random_state", 42),
    )
    return estimator.fit(data.X_train, data.y_train)


def estimator_for(
    task: str,
    model_type: str,
    *,
    n_estimators: int = 100,
    max_depth: int | None = None,
    random_state: int = 42,
) -> Any:
    """An unfitted scikit-learn estimator of ``model_type`` for ``task``."""
    from sklearn import ensemble
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    known = REGRESSORS if task == "regression" else CLASSIFIERS
    if model_type not in known:
        raise ParameterError(
            "model_type",
            f"{model_type!r} is not a built-in {task} model; one of {', '.join(known)}",
        )
    regression = task == "regression"
    if model_type == "random_forest":
        forest = ensemble.RandomForestRegressor if regression else ensemble.RandomForestClassifier
        return forest(
            n_estimators=n_estimators, max_depth=max_depth, random_state=random_state, n_jobs=1
        )
    if model_type == "gradient_boosting":
        boosting = (
            ensemble.GradientBoostingRegressor
            if regression
            else ensemble.GradientBoostingClassifier
        )
        return boosting(
            n_estimators=n_estimators, max_depth=max_depth or 3, random_state=random_state
        )
    if model_type == "ridge":
        return make_pipeline(StandardScaler(), Ridge(random_state=random_state))
    return make_pipeline(
        StandardScaler(), LogisticRegression(max_iter=2000, random_state=random_state)
    )


__all__ = ["CLASSIFIERS", "REGRESSORS", "estimator_for", "fit"]

"""Training entrypoints: a team's own training code, called the way the toolkit calls its own.

An entrypoint is ``package.module:function`` (``training.entrypoint``), imported with the
project's directory (the one holding ``mlops.yaml``) first on ``sys.path``, so a
``my_model.py`` beside the project file is found from a notebook kernel or the CLI alike. It
is called as ``function(data, params)`` — ``data`` a :class:`~mlops_kit.train.data.Dataset`
(``X_train``, ``y_train``, ``X_test``, ``y_test``, ``task``, ``feature_names``…), ``params``
a dict — and returns a fitted model, ``(model, extra_metrics)`` or a :class:`Trained`.

:func:`run` resolves, calls and checks it and gives a :class:`Fitted`: the model with its MLflow
flavour (told by its type: scikit-learn, XGBoost, LightGBM or ``mlflow.pyfunc.PythonModel``)
and the code to ship with it. :func:`log_model` logs that with the right flavour. Whatever goes
wrong stops with one line naming the entrypoint (:class:`~mlops_kit.errors.EntrypointError`).
"""

from __future__ import annotations

import importlib
import inspect
import math
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_kit.errors import EntrypointError, EntrypointNotFound, ToolkitError
from mlops_kit.settings_training import METRICS

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from mlops_kit.train.data import Dataset

FLAVOURS = ("sklearn", "xgboost", "lightgbm", "pyfunc")
"""The MLflow flavours a model is logged with, told by its type (:func:`flavour_of`)."""
REQUIREMENTS = {
    "sklearn": ["scikit-learn", "pandas", "numpy"],
    "xgboost": ["xgboost", "scikit-learn", "pandas", "numpy"],
    "lightgbm": ["lightgbm", "scikit-learn", "pandas", "numpy"],
    "pyfunc": ["mlflow", "scikit-learn", "pandas", "numpy"],
}
"""pip requirements logged per flavour; passing them skips MLflow's ~5 s inference of them."""
_ACCEPTED = (
    "a scikit-learn estimator, an XGBoost or LightGBM model, or an mlflow.pyfunc.PythonModel"
)


@dataclass(frozen=True)
class Trained:
    """What an entrypoint may return instead of a bare model: the model and extra metrics."""

    model: Any
    metrics: Mapping[str, float] = field(default_factory=dict)
    """Figures of the entrypoint's own (e.g. cross-validation) logged beside the toolkit's."""


@dataclass(frozen=True)
class Fitted:
    """A model an entrypoint trained, checked and ready to log."""

    entrypoint: str
    model: Any
    flavour: str
    """One of :data:`FLAVOURS`."""
    extra_metrics: dict[str, float] = field(default_factory=dict)
    code_paths: list[str] = field(default_factory=list)
    """The entrypoint's own module or package, logged with the model so servers import it."""

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """The model's predictions for ``X``; EntrypointError when it cannot make them."""
        import numpy as np

        try:
            if self.flavour == "pyfunc":
                needs_context = "context" in inspect.signature(self.model.predict).parameters
                out = self.model.predict(None, X) if needs_context else self.model.predict(X)
            else:
                out = self.model.predict(X)
            predicted = np.asarray(out)
        except Exception as exc:
            raise EntrypointError(
                self.entrypoint,
                f"returned a model whose predict failed on the held-out rows: "
                f"{type(exc).__name__}: {exc}",
            ) from exc
        if predicted.ndim == 2 and predicted.shape[1] == 1:
            predicted = predicted[:, 0]
        if len(predicted) != len(X):
            raise EntrypointError(
                self.entrypoint,
                f"returned a model that predicts {len(predicted)} values for {len(X)} rows",
            )
        return predicted


def run(
    spec: str, data: Dataset, params: Mapping[str, Any], project_dir: Path | None = None
) -> Fitted:
    """Import the entrypoint ``spec``, call it with ``data`` and ``params``, check what it
    returned. A toolkit error the entrypoint raises (a bad ``model_type``) passes unchanged."""
    function = resolve(spec, project_dir)
    try:
        returned = function(data, dict(params))
    except ToolkitError:  # already one line that says what is wrong (a bad model_type)
        raise
    except Exception as exc:
        raise EntrypointError(spec, f"raised {type(exc).__name__}: {exc}") from exc
    return check(spec, returned, data.task, code_paths(spec, project_dir))


def resolve(spec: str, project_dir: Path | None = None) -> Callable[..., Any]:
    """The function ``spec`` (``package.module:function``) names, imported with
    ``project_dir`` first on ``sys.path``."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise EntrypointNotFound(spec, "is not of the form package.module:function")
    if project_dir is not None and str(project_dir) not in sys.path:
        sys.path.insert(0, str(project_dir))
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is None or not _is_prefix(exc.name, module_name):
            raise EntrypointNotFound(
                spec, f"failed while importing {module_name}: ModuleNotFoundError: {exc}"
            ) from exc
        where = f" (looked in {project_dir} and the installed packages)" if project_dir else ""
        raise EntrypointNotFound(spec, f"cannot be imported: {exc}{where}") from exc
    except Exception as exc:
        raise EntrypointNotFound(
            spec, f"failed while importing {module_name}: {type(exc).__name__}: {exc}"
        ) from exc
    function = getattr(module, attr, None)
    if function is None:
        raise EntrypointNotFound(spec, f"is missing: module {module_name} has no {attr!r}")
    if not callable(function):
        raise EntrypointNotFound(spec, f"is not a function but a {type(function).__name__}")
    return function


def check(spec: str, returned: Any, task: str, paths: list[str] | None = None) -> Fitted:
    """The :class:`Fitted` for what an entrypoint returned; EntrypointError if it is none."""
    metrics: Mapping[str, Any] = {}
    model = returned
    if isinstance(returned, Trained):
        model, metrics = returned.model, returned.metrics
    elif isinstance(returned, tuple):
        if len(returned) != 2 or not isinstance(returned[1], Mapping):
            raise EntrypointError(
                spec,
                f"returned a tuple of {len(returned)} items; return the model, or "
                "(model, {metric name: value})",
            )
        model, metrics = returned
    if model is None:
        raise EntrypointError(spec, "returned None; it must return the fitted model")
    flavour = flavour_of(model)
    if flavour is None:
        raise EntrypointError(
            spec,
            f"returned a {_type_name(model)}, which is not a model mlops-kit can log: "
            f"return {_ACCEPTED}",
        )
    if flavour == "sklearn":
        _require_fitted(spec, model)
    return Fitted(spec, model, flavour, _extra_metrics(spec, metrics, task), paths or [])


def flavour_of(model: Any) -> str | None:
    """The MLflow flavour ``model`` is logged with (:data:`FLAVOURS`), or None."""
    import mlflow.pyfunc

    if isinstance(model, mlflow.pyfunc.PythonModel):
        return "pyfunc"
    top = type(model).__module__.split(".")[0]
    if top in ("xgboost", "lightgbm"):
        return top
    from sklearn.base import BaseEstimator

    if isinstance(model, BaseEstimator) and callable(getattr(model, "predict", None)):
        return "sklearn"
    return None


def code_paths(spec: str, project_dir: Path | None) -> list[str]:
    """The entrypoint's top-level module file or package directory, when it lives in the
    project (not the toolkit, not an installed package): logged with the model, it lets a
    server import the classes the model is made of."""
    top = spec.partition(":")[0].split(".")[0]
    if project_dir is None or top == "mlops_kit":
        return []
    for candidate in (project_dir / top, project_dir / f"{top}.py"):
        if candidate.exists():
            return [str(candidate)]
    return []


def trusted_types(estimator: Any) -> list[str]:
    """Types skops must be told to trust when loading ``estimator`` back.

    We trained the estimator in this process, so its own types are trusted; nothing else is.
    """
    from skops.io import dumps, get_untrusted_types

    return list(get_untrusted_types(data=dumps(estimator)))


def log_model(
    fitted: Fitted,
    *,
    signature: Any,
    input_example: pd.DataFrame,
    registered_model_name: str,
) -> Any:
    """Log ``fitted`` as the run's ``model`` with its flavour and register it; MLflow's
    ModelInfo."""
    import mlflow

    common: dict[str, Any] = {
        "name": "model",
        "signature": signature,
        "input_example": input_example,
        "pip_requirements": REQUIREMENTS[fitted.flavour],
        "registered_model_name": registered_model_name,
        "code_paths": fitted.code_paths or None,
    }
    if fitted.flavour == "sklearn":
        return mlflow.sklearn.log_model(
            fitted.model, skops_trusted_types=trusted_types(fitted.model), **common
        )
    if fitted.flavour == "pyfunc":
        return mlflow.pyfunc.log_model(python_model=fitted.model, **common)
    flavour = importlib.import_module(f"mlflow.{fitted.flavour}")
    return flavour.log_model(fitted.model, **common)


def _is_prefix(name: str, module_name: str) -> bool:
    """Whether ``name`` is ``module_name`` or one of its parent packages."""
    return module_name == name or module_name.startswith(f"{name}.")


def _require_fitted(spec: str, model: Any) -> None:
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    try:
        check_is_fitted(model)
    except NotFittedError:
        raise EntrypointError(
            spec, f"returned an unfitted {_type_name(model)}: call fit before returning it"
        ) from None
    except TypeError:  # not an estimator check_is_fitted knows: trust predict
        pass


def _extra_metrics(spec: str, metrics: Mapping[str, Any], task: str) -> dict[str, float]:
    extra: dict[str, float] = {}
    for name, value in metrics.items():
        if not isinstance(name, str) or not name:
            raise EntrypointError(spec, f"returned a metric named {name!r}; names are text")
        if name in METRICS[task]:
            raise EntrypointError(
                spec, f"returned metric {name!r}, which the toolkit computes on the held-out rows"
            )
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise EntrypointError(
                spec, f"returned metric {name!r} = {value!r}, which is not a number"
            ) from None
        if not math.isfinite(number):
            raise EntrypointError(spec, f"returned metric {name!r} = {number}, not a finite number")
        extra[name] = number
    return extra


def _type_name(value: Any) -> str:
    kind = type(value)
    return kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__name__}"


__all__ = [
    "FLAVOURS",
    "Fitted",
    "Trained",
    "check",
    "code_paths",
    "flavour_of",
    "log_model",
    "resolve",
    "run",
    "trusted_types",
]

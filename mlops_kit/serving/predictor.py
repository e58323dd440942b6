"""How the runtime loads and calls a model.

:func:`load_model` keeps the last models it loaded from local folders: a promotion loads the
candidate beside the live version to verify it, unloads it, then loads the same folder as the
new version, and a 100-tree forest saved with skops takes about a second to load.

:func:`model_predict` calls the flavour's own predict when MLflow's pyfunc layer would
change nothing, else MLflow's ``PyFuncModel.predict``. ``PyFuncModel.predict`` enforces the
signature on every call: it rebuilds the DataFrame with
the columns in the schema's order and each converted to its schema type, then calls the
flavour's predict function. For a scikit-learn model given exactly the schema's columns, in
its order, with its dtypes, that rebuilt frame equals the one given; calling the flavour's
function with it directly gives the same predictions without the copy (about a fifth of a
batched ``predict`` on a 100-tree forest); a forest is then predicted tree by tree without
joblib's dispatch (:mod:`mlops_kit.serving.forest`). Anything else — another flavour, parameters, a
tensor or optional column schema, a column of another dtype — takes MLflow's path.
"""

from __future__ import annotations

import inspect
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from mlflow.types.schema import ColSpec, DataType

from mlops_kit.serving.batching import Columns, model_input

__all__ = ["KEEP_LOADED", "load_model", "model_predict"]

KEEP_LOADED = 2
"""Models :func:`load_model` keeps after their last use (the live version and a candidate)."""

_loaded: OrderedDict[tuple[str, ...], Any] = OrderedDict()
_loaded_lock = threading.Lock()

_DIRECT_FLAVOURS = frozenset({"mlflow.sklearn"})
"""Flavours whose pyfunc predict only forwards the data to the model's own method."""

_DIRECT_TYPES = frozenset(
    {DataType.boolean, DataType.integer, DataType.long, DataType.float, DataType.double}
)


def load_model(uri: str) -> Any:
    """``mlflow.pyfunc.load_model(uri)``, the same object again for an unchanged local folder.

    A folder is unchanged when every file in it has the same path, size and modification time
    as when it was loaded; a model is a read-only artifact, and a scikit-learn model predicts
    from any number of runtimes alike. Failures are not kept.
    """
    import mlflow.pyfunc

    key = _folder_key(uri)
    with _loaded_lock:
        if key is not None and key in _loaded:
            _loaded.move_to_end(key)
            return _loaded[key]
    model = mlflow.pyfunc.load_model(uri)
    if key is not None:
        with _loaded_lock:
            _loaded[key] = model
            while len(_loaded) > KEEP_LOADED:
                _loaded.popitem(last=False)
    return model


def _folder_key(uri: str) -> tuple[str, ...] | None:
    """What identifies the model folder ``uri`` as it is now; None if it is not a local one."""
    path = Path(uri)
    if not path.is_absolute() or not (path / "MLmodel").is_file():
        return None
    found = [str(path.resolve())]
    for folder, _, files in os.walk(path):
        for name in sorted(files):
            stat = os.stat(os.path.join(folder, name))
            found.append(f"{os.path.join(folder, name)}:{stat.st_size}:{stat.st_mtime_ns}")
    return tuple(found)


def model_predict(model: Any) -> Callable[[Any, dict[str, Any] | None], Any]:
    """``predict(data, params)`` for a loaded pyfunc ``model``; ``data`` as the runtime decodes
    it (:class:`~mlops_kit.serving.batching.Columns` included)."""
    columns = _direct_columns(model)
    flavour_predict = getattr(model, "_predict_fn", None)

    def through_mlflow(data: Any, params: dict[str, Any] | None = None) -> Any:
        return model.predict(model_input(data), params=params)

    if columns is None or flavour_predict is None:
        return through_mlflow
    call: Callable[..., Any] = flavour_predict
    takes_params = _takes_params(call)
    forest = _forest_predict(call)
    if forest is not None:
        call, takes_params = forest, False

    def predict(data: Any, params: dict[str, Any] | None = None) -> Any:
        if params is None and isinstance(data, Columns) and _fits(data, columns):
            frame = data.frame()
            return call(frame, params=None) if takes_params else call(frame)
        return through_mlflow(data, params)

    return predict


def _forest_predict(flavour_predict: Callable[..., Any]) -> Callable[[Any], Any] | None:
    """The scikit-learn wrapper's ``predict`` of a forest without joblib's per-tree dispatch
    (:mod:`mlops_kit.serving.forest`: same arithmetic, same answers); None for anything else."""
    from mlops_kit.serving.forest import fast_predict

    wrapper = getattr(flavour_predict, "__self__", None)
    if getattr(flavour_predict, "__name__", None) != "predict" or wrapper is None:
        return None
    estimator = getattr(wrapper, "sklearn_model", None)
    return None if estimator is None else fast_predict(estimator)


def _direct_columns(model: Any) -> tuple[tuple[str, str], ...] | None:
    """``(name, dtype)`` of each input when the flavour may be called directly, else None."""
    metadata = getattr(model, "metadata", None)
    if metadata is None or getattr(model, "loader_module", None) not in _DIRECT_FLAVOURS:
        return None
    try:
        if metadata._is_signature_from_type_hint() or metadata._is_type_hint_from_example():
            return None
        schema = metadata.get_input_schema()
        params = metadata.get_params_schema()
    except AttributeError:  # an MLflow without these: keep its own path
        return None
    if schema is None or params is not None or not schema.has_input_names():
        return None
    found = []
    for spec in schema.inputs:
        if (
            not isinstance(spec, ColSpec)
            or not isinstance(spec.type, DataType)
            or spec.type not in _DIRECT_TYPES
            or not spec.required
            or spec.name is None
        ):
            return None
        found.append((spec.name, np.dtype(spec.type.to_numpy()).str))
    return tuple(found)


def _fits(data: Columns, columns: tuple[tuple[str, str], ...]) -> bool:
    """Whether ``data`` holds exactly ``columns``, in order, with their dtypes."""
    arrays = data.arrays
    if len(arrays) != len(columns):
        return False
    return all(
        name == want and array.dtype.str == dtype
        for (name, array), (want, dtype) in zip(arrays.items(), columns, strict=True)
    )


def _takes_params(function: Callable[..., Any]) -> bool:
    """Whether MLflow passes ``params=`` to the flavour's function (as ``PyFuncModel`` does)."""
    try:
        parameter = inspect.signature(function).parameters.get("params")
    except (TypeError, ValueError):
        return False
    return parameter is not None and parameter.kind != inspect.Parameter.VAR_KEYWORD

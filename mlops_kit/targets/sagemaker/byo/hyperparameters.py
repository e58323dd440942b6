"""The training job's hyperparameters: the project's training settings as SageMaker's strings.

SageMaker passes hyperparameters as a JSON object whose values are all strings (the SDK
writes ``str(value)``, so a missing depth arrives as ``"None"``). :func:`encode` writes the
map a CreateTrainingJob request carries; :func:`decode` reads it back inside the container,
validating each value as the project's own training parameters are validated.

The names are the fields of :class:`~mlops_kit.settings.TrainingSettings` but ``dataset``
(the data is the ``train`` channel), plus ``target``: the label column of the channel's files.
Names SageMaker adds for itself (``sagemaker_*``, ``_tuning_objective_metric``) are ignored.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from mlops_kit.errors import ParameterError
from mlops_kit.settings import TrainingSettings
from mlops_kit.train.training import training_params

TARGET = "target"
"""The hyperparameter naming the label column."""
DEFAULT_TARGET = "target"
"""The label column when ``target`` is not given."""
SOURCE_NAMES = frozenset({"dataset", "data", "task", "entrypoint", "params"})
"""Training settings that say what data and code to train with, not how: not hyperparameters
(the data is the ``train`` channel; the container trains the built-in estimators)."""
TRAINING_NAMES = tuple(name for name in TrainingSettings.model_fields if name not in SOURCE_NAMES)
"""The training parameters a job may set."""
NAMES = (TARGET, *TRAINING_NAMES)
_NONE = frozenset({"", "none", "null"})


def encode(training: TrainingSettings, target: str = DEFAULT_TARGET) -> dict[str, str]:
    """The ``HyperParameters`` of a training job that trains as ``training`` says."""
    values = training.model_dump(include=set(TRAINING_NAMES))
    encoded = {
        name: value if isinstance(value, str) else json.dumps(value)
        for name, value in values.items()
    }
    return {TARGET: target, **encoded}


def decode(raw: Mapping[str, Any]) -> tuple[TrainingSettings, str]:
    """The training parameters and the label column that ``raw`` asks for.

    Values not given keep :class:`~mlops_kit.settings.TrainingSettings`' defaults. Raises
    :class:`~mlops_kit.errors.ParameterError` naming the first unknown or invalid one.
    """
    values: dict[str, Any] = {}
    for name, value in raw.items():
        if name.startswith(("sagemaker_", "_")):
            continue
        if name not in NAMES:
            raise ParameterError(name, f"unknown hyperparameter; known: {', '.join(NAMES)}")
        if isinstance(value, str) and value.strip().lower() in _NONE:
            value = None
        values[name] = value
    target = values.pop(TARGET, None) or DEFAULT_TARGET
    if not isinstance(target, str):
        raise ParameterError(TARGET, f"must name a column (got {target!r})")
    return training_params(TrainingSettings(), **values), target


__all__ = ["DEFAULT_TARGET", "NAMES", "TARGET", "TRAINING_NAMES", "decode", "encode"]

"""SageMaker's contract with a bring-your-own container: its files, variables and log lines.

SageMaker mounts everything under ``/opt/ml``: a training job's channels in
``input/data/<channel>/``, its hyperparameters in ``input/config/hyperparameters.json``,
the model it uploads from ``model/`` and a failure reason from ``output/failure``; an endpoint
unpacks ``model.tar.gz`` into ``model/``. Every path here hangs off one root,
``$MLOPS_KIT_SAGEMAKER_ROOT`` (default ``/opt/ml``), so the same programs run as plain
processes on a laptop or in a test.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mlops_kit.errors import ConfigError

ROOT_ENV = "MLOPS_KIT_SAGEMAKER_ROOT"
"""Environment variable naming the root of the layout."""
DEFAULT_ROOT = "/opt/ml"
"""SageMaker's root, the default."""
HOST_ENV = "MLOPS_KIT_SERVE_HOST"
"""The interface ``serve`` listens on: 127.0.0.1 unless set (the image sets 0.0.0.0)."""
PORT_ENV = "SAGEMAKER_BIND_TO_PORT"
"""The port ``serve`` listens on, 8080 unless set (SageMaker sets it for some endpoints)."""
MAX_BYTES_ENV = "MLOPS_KIT_SERVE_MAX_BYTES"
"""The largest request body ``serve`` reads."""
METRIC_REGEX = r"mlops-kit metric {name}=([-+0-9.eE]+)"
"""``str.format(name=...)`` gives the regex matching the log line of one of ``train``'s
metrics, for a training job's ``MetricDefinitions``."""


@dataclass(frozen=True)
class Layout:
    """The ``/opt/ml`` tree, rooted anywhere."""

    root: Path

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Layout:
        """The layout at ``$MLOPS_KIT_SAGEMAKER_ROOT``, else at ``/opt/ml``."""
        environ = os.environ if environ is None else environ
        return cls(Path(environ.get(ROOT_ENV) or DEFAULT_ROOT))

    @property
    def model_dir(self) -> Path:
        """Training writes the model here; an endpoint finds it unpacked here."""
        return self.root / "model"

    @property
    def hyperparameters(self) -> Path:
        """The training job's hyperparameters: a JSON object of strings."""
        return self.root / "input" / "config" / "hyperparameters.json"

    def channel(self, name: str) -> Path:
        """The directory holding the files of input channel ``name``."""
        return self.root / "input" / "data" / name

    @property
    def failure(self) -> Path:
        """Why training failed, one line: SageMaker shows it as the job's FailureReason."""
        return self.root / "output" / "failure"

    @property
    def output_data(self) -> Path:
        """Other outputs of a training job (uploaded as ``output.tar.gz``)."""
        return self.root / "output" / "data"


def find_model(model_dir: Path) -> Path:
    """The MLflow model in ``model_dir``: at its root, or in its only subdirectory.

    SageMaker unpacks ``model.tar.gz`` into ``model/``; an archive made with the model
    directory itself inside (not its files) still serves.
    """
    if (model_dir / "MLmodel").is_file():
        return model_dir
    found = [path.parent for path in model_dir.glob("*/MLmodel") if path.is_file()]
    if len(found) == 1:
        return found[0]
    raise ConfigError(f"{model_dir} holds no MLflow model (no MLmodel file at its root)")


__all__ = [
    "DEFAULT_ROOT",
    "HOST_ENV",
    "MAX_BYTES_ENV",
    "METRIC_REGEX",
    "PORT_ENV",
    "ROOT_ENV",
    "Layout",
    "find_model",
]

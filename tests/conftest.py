"""Shared fixtures: each test gets its own state directory and working directory."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
EXAMPLE_CONFIG = REPO / "examples" / "mlops.yaml"


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run every test in its own directory with no toolkit variables inherited."""
    for key in list(os.environ):
        if key.startswith("MLOPS_KIT_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "")
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / ".mlops"


@pytest.fixture
def project(state_dir: Path):
    from mlops_kit.project import Project

    return Project.load(state_dir=state_dir)


@pytest.fixture
def wine():
    from mlops_kit.train.training import load_dataset

    return load_dataset("wine")


@pytest.fixture
def registered(project, wine):
    """A project with version 1 trained and registered."""
    from mlops_kit.train.training import train_and_register, training_params

    result = train_and_register(project, wine, training_params(n_estimators=20))
    return project, result


@contextlib.contextmanager
def mlflow_globals_restored() -> Iterator[None]:
    """Project.client points MLflow's global URIs (and their env vars) at a registry: undo it."""
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    saved = (tracking_utils._tracking_uri, registry_utils._registry_uri)
    env = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    try:
        yield
    finally:
        tracking_utils._tracking_uri, registry_utils._registry_uri = saved
        for key, value in env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

"""Helpers shared by the tests: real servers and schemas, not mocks of the toolkit."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
DEMO_CONFIG = REPO / "mlops.yaml"
"""The demo project file, at the root so that discovery finds it from ``notebooks/`` too."""


def write_project(directory: Path, **settings: Any) -> Path:
    """Write ``directory/mlops.yaml`` holding ``settings``; the project file commands need."""
    import yaml

    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "mlops.yaml"
    settings.setdefault("model_name", "wine-classifier")  # every project file names its model
    plain = {k: str(v) if isinstance(v, Path) else v for k, v in settings.items()}
    path.write_text(yaml.safe_dump(plain, sort_keys=False))
    return path


_REGISTRY_TEMPLATE: list[Path] = []


def seeded_registry(state_dir: Path) -> Path:
    """Copy an MLflow SQLite database whose schema is already made to ``state_dir/mlflow.db``.

    Making the schema costs seconds for every new database (MLflow's migrations); tests about
    something else start from a copy made once per test session. The registry tests, and every
    test that does not seed, still let MLflow make its schema.
    """
    import atexit
    import shutil
    import tempfile

    if not _REGISTRY_TEMPLATE:
        from mlflow import MlflowClient

        folder = Path(tempfile.mkdtemp(prefix="mlops-kit-registry-"))
        atexit.register(shutil.rmtree, folder, True)
        MlflowClient(tracking_uri=f"sqlite:///{folder / 'mlflow.db'}").search_experiments()
        _REGISTRY_TEMPLATE.append(folder / "mlflow.db")
    state_dir.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(_REGISTRY_TEMPLATE[0], state_dir / "mlflow.db"))


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

"""Fixtures for the serving tests: tiny real MLflow models and real MLServer processes.

Test modules load this as a plugin (``pytest_plugins = ["tests.support.serving"]``) so that the
session-scoped server below is started once for all of them; they import names from here only
for type checking (importing it at run time would defeat pytest's assertion rewriting), and
reach the helpers through fixtures. Every server lives under one
temporary state directory; the session's teardown stops them all and checks that no process
is left behind, whether the tests passed or not.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlops_kit.deployment import DeploymentSpec
from mlops_kit.settings import EnvironmentSettings, Settings
from mlops_kit.targets.base import DeploymentStatus
from mlops_kit.targets.local import SERVER_FILE, LocalTarget, ServerRecord, stop_all

ENVIRONMENTS = ("staging", "production", "lifecycle", "flavours", "batching")
SERVER_FIXTURES = {"staging_server", "local_target", "lifecycle", "servers"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that starts or uses a server ``slow`` (``-m "not slow"`` skips them)."""
    for item in items:
        if SERVER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@dataclass(frozen=True)
class Models:
    """Saved MLflow models of the wine data, and what they predict."""

    X: pd.DataFrame
    v1: Path
    """LogisticRegression, skops format (MLflow's default)."""
    v2: Path
    """A constant classifier that always answers class 2: easy to tell from v1."""
    pickled: Path
    """v1's estimator saved as ``model.pkl``, readable by mlserver-sklearn."""
    broken: Path
    """An MLflow model directory whose artifact is corrupt: it fails to load."""
    predictions_v1: np.ndarray
    row_ids: Path
    """A tree that predicts each wine row's position in ``X``: a mixed-up row shows at once."""
    row_ids_v2: Path
    """The same tree answering ``1000 +`` the position: tells versions apart."""

    def rows(self, n: int = 5) -> pd.DataFrame:
        """``n`` rows spread across the three classes."""
        return self.X.iloc[np.linspace(0, len(self.X) - 1, n).astype(int)]


@dataclass(frozen=True)
class Served:
    """A live server started by the session fixture."""

    target: LocalTarget
    spec: DeploymentSpec
    status: DeploymentStatus
    start_seconds: float

    @property
    def endpoint(self) -> str:
        return self.target.endpoint(self.spec.model_name)

    @property
    def record(self) -> ServerRecord:
        record = self.target.server(self.spec.model_name)
        assert record is not None
        return record


def _save(model: Any, path: Path, X: pd.DataFrame, **kwargs: Any) -> Path:
    import mlflow.sklearn
    from mlflow.models import infer_signature

    mlflow.sklearn.save_model(
        model,
        str(path),
        signature=infer_signature(X, model.predict(X)),
        input_example=X.head(3),
        pip_requirements=["scikit-learn"],
        **kwargs,
    )
    return path


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> Models:
    """Small models trained once per session (about a second)."""
    from sklearn.datasets import load_wine
    from sklearn.dummy import DummyClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeRegressor

    X, y = load_wine(as_frame=True, return_X_y=True)
    root = tmp_path_factory.mktemp("models")
    lr = LogisticRegression(max_iter=5000).fit(X, y)
    constant = DummyClassifier(strategy="constant", constant=2).fit(X, y)
    v1 = _save(lr, root / "v1", X)
    broken = _save(lr, root / "broken", X)
    (broken / "model.skops").write_bytes(b"not a model")
    trees = {"skops_trusted_types": ["sklearn.tree._tree.Tree"]}
    positions = np.arange(len(X), dtype="float64")
    row_ids = DecisionTreeRegressor(random_state=0).fit(X, positions)
    row_ids_v2 = DecisionTreeRegressor(random_state=0).fit(X, positions + 1000)
    return Models(
        X=X,
        v1=v1,
        v2=_save(constant, root / "v2", X),
        pickled=_save(lr, root / "pickled", X, serialization_format="pickle"),
        broken=broken,
        predictions_v1=lr.predict(X),
        row_ids=_save(row_ids, root / "row_ids", X, **trees),
        row_ids_v2=_save(row_ids_v2, root / "row_ids_v2", X, **trees),
    )


@pytest.fixture(scope="session")
def serving_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Settings with a temporary state directory; stops every server under it at the end."""
    state_dir = tmp_path_factory.mktemp("state")
    settings = Settings(
        state_dir=state_dir,
        environments=[
            EnvironmentSettings(name=name, kind="production" if name == "production" else "staging")
            for name in ENVIRONMENTS
        ],
    )
    yield settings
    records = [ServerRecord.read(p) for p in state_dir.glob(f"serving/*/*/{SERVER_FILE}")]
    stop_all(state_dir)
    leftovers = [r.pid for r in records if r is not None and Processes.running(r.pid)]
    leftovers += Processes.under(state_dir)
    assert not leftovers, f"server processes left running: {leftovers}"


def target_for(settings: Settings, environment: str) -> LocalTarget:
    return LocalTarget(settings, settings.environment(environment))


@pytest.fixture
def local_target(serving_settings: Settings) -> Iterator[Callable[[str], LocalTarget]]:
    """Factory: a LocalTarget for one of :data:`ENVIRONMENTS`, closed after the test."""
    made: list[LocalTarget] = []

    def make(environment: str) -> LocalTarget:
        made.append(target_for(serving_settings, environment))
        return made[-1]

    yield make
    for target in made:
        target.close()


@pytest.fixture(scope="session")
def staging_server(serving_settings: Settings, models: Models) -> Iterator[Served]:
    """Version 1 of ``wine`` served in ``staging`` all session; tests must leave it so."""
    target = target_for(serving_settings, "staging")
    spec = DeploymentSpec(
        environment="staging", model_name="wine", version="1", model_uri=str(models.v1)
    )
    began = time.monotonic()
    status = target.apply(spec)
    served = Served(target, spec, status, time.monotonic() - began)
    yield served
    target.delete("wine")
    target.close()


class Processes:
    """Looks at processes the way a user would: do they still exist?"""

    @staticmethod
    def running(pid: int) -> bool:
        """True while ``pid`` exists and is not a zombie."""
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return True
        return stat[stat.rindex(")") + 2] not in "ZX"

    @classmethod
    def under(cls, folder: Path) -> list[int]:
        """Pids of live processes whose command line names ``folder`` or a path under it."""
        marker = str(Path(folder).absolute()).encode()
        found = []
        for proc in Path("/proc").glob("[0-9]*"):
            try:
                if marker in (proc / "cmdline").read_bytes() and cls.running(int(proc.name)):
                    found.append(int(proc.name))
            except (OSError, ValueError):
                continue
        return found


@pytest.fixture(scope="session")
def processes() -> Processes:
    return Processes()

"""Shared fixtures: each test gets its own state directory and working directory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support import (  # noqa: F401 - re-exported
    DEMO_CONFIG,
    NOTEBOOKS,
    REPO,
    seeded_registry,
    write_project,
)


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run every test in its own directory with no toolkit variables inherited."""
    for key in list(os.environ):
        if key.startswith("MLOPS_KIT_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "")
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    monkeypatch.chdir(tmp_path)
    # Project discovery walks up from the working directory: a project file above the test
    # directories (written into the session's base directory) would be found by every test.
    stray = [p / "mlops.yaml" for p in tmp_path.parents if (p / "mlops.yaml").is_file()]
    assert not stray, f"a project file above the test directories: {stray}"


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / ".mlops"


@pytest.fixture
def project(tmp_path: Path, state_dir: Path):
    """A project with the built-in defaults, but a project file: what deploying needs.

    Its registry starts from a copy of an empty one (MLflow's schema made once per session);
    tests of the registry itself make their own.
    """
    from mlops_kit.project import Project

    seeded_registry(state_dir)
    return Project.load(write_project(tmp_path), state_dir=state_dir)


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


@pytest.fixture(scope="session")
def _moto_session():
    """One moto server on loopback for the whole session (tests reset it)."""
    from tests.support.aws import moto_server

    with moto_server() as server:
        yield server


@pytest.fixture
def aws(_moto_session, monkeypatch: pytest.MonkeyPatch):
    """An empty AWS account on a loopback moto server; standard AWS variables point at it."""
    for key in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(key, raising=False)
    for key, value in _moto_session.environment.items():
        monkeypatch.setenv(key, value)
    _moto_session.reset()
    return _moto_session


@pytest.fixture
def sagemaker_aws(aws):
    """The ``aws`` account, its moto server serving what moto's SageMaker lacks: UpdateEndpoint,
    StopTrainingJob, training jobs that train, InvokeEndpoint answered by the real model
    (see tests/support/sagemaker_server.py)."""
    from tests.support import sagemaker_server

    sagemaker_server.install(aws.url)
    yield aws
    sagemaker_server.reset()


@pytest.fixture(scope="session")
def _postgres_session():
    """One real PostgreSQL on loopback for the whole session (tests get their own databases).

    Missing binaries fail the tests that need it, loudly: CI (``.ci/run``) installs them.
    """
    from tests.support.postgres import MISSING, find_bin_dir, postgres_server

    if find_bin_dir() is None:
        pytest.fail(MISSING, pytrace=False)
    with postgres_server() as server:
        yield server


@pytest.fixture
def postgres(_postgres_session):
    """The session's PostgreSQL server (:class:`tests.support.postgres.PostgresServer`)."""
    return _postgres_session


@pytest.fixture
def postgres_url(postgres) -> str:
    """The URL of a fresh, empty PostgreSQL database (with a password, as deployments have)."""
    return postgres.create_database()

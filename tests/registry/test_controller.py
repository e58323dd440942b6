"""Moving the staging alias deploys it: registry event → GitOps commit → sync, measured."""

from __future__ import annotations

import threading
import time

import pytest

from mlops_kit.gitops.deploy import deploy
from mlops_kit.gitops.repository import GitOpsRepo
from mlops_kit.project import Project
from mlops_kit.registry import server as registry_server
from mlops_kit.registry.client import Registry
from mlops_kit.registry.controller import follow
from mlops_kit.targets import for_environment
from mlops_kit.targets.local import stop_all
from mlops_kit.train.training import load_dataset, train_and_register, training_params
from tests.support import seeded_registry, write_project

pytestmark = pytest.mark.slow


@pytest.fixture
def project(tmp_path):
    seeded_registry(tmp_path / "state")  # the registry's schema is not what these are about
    project = Project.load(write_project(tmp_path), state_dir=tmp_path / "state")
    data = load_dataset("iris")
    for n in (3, 4):
        train_and_register(project, data, training_params(n_estimators=n))
    deploy(project, "staging", 1, actor="ci")
    Registry(project).set_alias("staging", 1)
    yield project
    registry_server.stop(project)
    stop_all(project.state_dir)


def run_follow(project, move):
    """Start following staging, call ``move``, return seconds until staging serves v2."""
    stop = threading.Event()
    deployed = threading.Event()
    thread = threading.Thread(
        target=follow,
        args=(project, "staging"),
        kwargs={"stop": stop, "interval": 0.5, "on_deploy": lambda e, r: deployed.set()},
        daemon=True,
    )
    thread.start()
    try:
        time.sleep(2)  # the source takes its baseline reading
        started = time.monotonic()
        move()
        assert deployed.wait(60), "no deploy followed the alias move"
        took = time.monotonic() - started
    finally:
        stop.set()
        thread.join(60)
    target = for_environment(project.settings, "staging")
    assert target.status(project.model_name).version == "2"
    commit = GitOpsRepo.from_settings(project.settings).history(environment="staging")[0]
    assert commit.trailers["Model-Version"] == "2"
    assert commit.trailers["Actor"] == "registry-events"
    return took, commit.trailers["Triggered-By"]


def test_alias_move_is_deployed_by_polling(project):
    took, trigger = run_follow(project, lambda: Registry(project).set_alias("staging", 2))
    print(f"\npoll: alias set -> staging serves v2 in {took:.2f} s")
    assert trigger == "alias staging (poll)"


def test_alias_move_is_deployed_by_webhook(project):
    served = registry_server.served(project)
    took, trigger = run_follow(served, lambda: Registry(served).set_alias("staging", 2))
    print(f"\nwebhook: alias set -> staging serves v2 in {took:.2f} s")
    assert trigger == "alias staging (webhook)"

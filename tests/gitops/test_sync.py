"""GitOps → target reconciliation and the deploy step, on real git and real MLServer processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import httpx
import numpy as np
import pytest

from mlops_kit.errors import SmokeTestFailed
from mlops_kit.gitops.deploy import deploy, smoke, spec_for
from mlops_kit.gitops.repository import GitOpsRepo
from mlops_kit.gitops.sync import sync, watch
from mlops_kit.project import Project
from mlops_kit.registry.client import Registry
from mlops_kit.targets import for_environment
from mlops_kit.targets.local import stop_all
from mlops_kit.train.training import load_dataset, train_and_register, training_params
from mlops_kit.verify import v2
from tests.support import write_project

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """A project with two registered versions (v1 forest, v2 logistic regression)."""
    root = tmp_path_factory.mktemp("sync")
    project = Project.load(write_project(root), state_dir=root / "state")
    data = load_dataset("wine")
    train_and_register(project, data, training_params(n_estimators=10))
    train_and_register(project, data, training_params(model_type="logistic_regression"))
    yield project, data
    stop_all(project.state_dir)


def served_pid(project, env="staging"):
    target = for_environment(project.settings, env)
    return target.server(project.model_name).pid


def test_deploy_serves_the_registered_models_predictions(pipeline):
    project, data = pipeline
    result = deploy(project, "staging", 1, actor="ci-bot")
    assert result.commit and result.sync.changed
    # A plain HTTP V2 request, no toolkit client: what any user of the endpoint would send.
    rows = data.X_test.head(8)
    answer = httpx.post(f"{result.endpoint}/infer", json=v2.encode_dataframe(rows), timeout=10)
    assert answer.status_code == 200
    served = np.asarray(answer.json()["outputs"][0]["data"])
    expected = Registry(project).load_model(1).predict(rows)
    assert np.array_equal(served, np.asarray(expected))
    assert answer.json()["model_version"] == "1"
    commit = GitOpsRepo.from_settings(project.settings).history(environment="staging")[0]
    assert commit.trailers["Model-Version"] == "1"
    assert commit.trailers["Actor"] == "ci-bot"
    assert commit.author == "ci-bot"
    assert smoke(project, "staging", 1).passed
    assert Registry(project).get(1).tags["mlops.smoke.staging"] == "passed"


def test_second_sync_changes_nothing(pipeline):
    project, _ = pipeline
    deploy(project, "staging", 1)
    repo = GitOpsRepo.from_settings(project.settings)
    head, pid = repo.head(), served_pid(project)
    again = deploy(project, "staging", 1)
    report = sync(project, "staging")
    assert again.commit is None
    assert not report.changed and not again.sync.changed
    assert repo.head() == head
    assert served_pid(project) == pid


def test_new_version_is_swapped_in_place(pipeline):
    project, _ = pipeline
    deploy(project, "staging", 1)
    pid = served_pid(project)
    result = deploy(project, "staging", 2)
    assert [a.kind for a in result.sync.actions] == ["update"]
    assert served_pid(project) == pid
    assert for_environment(project.settings, "staging").status(project.model_name).version == "2"
    assert smoke(project, "staging", 2).passed


def test_smoke_test_of_the_wrong_version_fails_loudly(pipeline):
    project, _ = pipeline
    deploy(project, "staging", 2)
    with pytest.raises(SmokeTestFailed, match="version"):
        smoke(project, "staging", 1)
    assert Registry(project).get(1).tags["mlops.smoke.staging"] == "failed"


def test_drift_is_reported_and_repaired(pipeline):
    project, _ = pipeline
    deploy(project, "staging", 2)
    target = for_environment(project.settings, "staging")
    # Someone loads another version by hand: the repo says v2, so sync puts v2 back.
    target.apply(spec_for(project, "staging", 1))
    report = sync(project, "staging")
    assert [(a.kind, a.version) for a in report.actions] == [("update", "2")]
    # The server dies: sync starts it again.
    os.killpg(target.server(project.model_name).pgid, signal.SIGKILL)
    time.sleep(0.2)
    assert not target.status(project.model_name).ready
    report = sync(project, "staging")
    assert report.actions[0].kind == "repair"
    assert target.status(project.model_name).ready


def test_watch_heals_a_killed_server(pipeline):
    project, _ = pipeline
    deploy(project, "staging", 2)
    target = for_environment(project.settings, "staging")
    stop = threading.Event()
    healed = []
    thread = threading.Thread(
        target=watch,
        args=(project, "staging"),
        kwargs={
            "interval": 0.2,
            "stop": stop,
            "on_report": lambda r: r.changed and healed.append(r),
        },
        daemon=True,
    )
    thread.start()
    try:
        killed = time.monotonic()
        os.killpg(target.server(project.model_name).pgid, signal.SIGKILL)
        deadline = killed + 60
        while not healed and time.monotonic() < deadline:
            time.sleep(0.1)
        assert healed, "watch did not repair the server within 60 s"
        print(f"\nwatch healed a killed server in {time.monotonic() - killed:.2f} s")
        assert target.status(project.model_name).ready
    finally:
        stop.set()
        thread.join(30)


def test_removed_from_the_repo_is_deleted(pipeline):
    project, _ = pipeline
    deploy(project, "staging", 1)
    repo = GitOpsRepo.from_settings(project.settings)
    repo.remove("staging", project.model_name, actor="tester")
    report = sync(project, "staging")
    assert [a.kind for a in report.actions] == ["delete"]
    assert for_environment(project.settings, "staging").status(project.model_name) is None


def test_cli_sync_watch_and_down(pipeline):
    project, _ = pipeline
    deploy(project, "staging", 2)
    env = {
        **os.environ,
        "MLOPS_KIT_CONFIG": str(project.settings.project_file),
        "MLOPS_KIT_STATE_DIR": str(project.state_dir),
    }
    target = for_environment(project.settings, "staging")
    pgid = target.server(project.model_name).pgid
    watcher = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlops_kit.cli",
            "sync",
            "staging",
            "--watch",
            "--interval",
            "0.3",
            "--max-seconds",
            "60",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert "watching staging" in watcher.stdout.readline()
        os.killpg(pgid, signal.SIGKILL)
        line = watcher.stdout.readline()
        assert "repair wine-classifier v2" in line
        assert target.status(project.model_name).ready
    finally:
        watcher.terminate()
        watcher.wait(30)
    down = subprocess.run(
        [sys.executable, "-m", "mlops_kit.cli", "down"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert down.returncode == 0 and "stopped" in down.stdout
    assert target.list() == []
    out = subprocess.run(["pgrep", "-f", str(project.state_dir / "serving")], capture_output=True)
    assert out.stdout == b""


def test_down_stops_servers_whose_records_were_lost(pipeline):
    project, _ = pipeline
    deploy(project, "staging", 2)
    pid = for_environment(project.settings, "staging").server(project.model_name).pid
    # The state directory's records vanish while the server runs (e.g. rm -rf .mlops).
    for record in (project.state_dir / "serving").glob("*/*/server.json"):
        record.unlink()
    stopped = stop_all(project.state_dir)
    assert f"unrecorded server {pid}" in stopped
    time.sleep(0.2)
    out = subprocess.run(["pgrep", "-f", str(project.state_dir / "serving")], capture_output=True)
    assert out.stdout == b""


def test_deploy_and_follow_never_move_production(pipeline, capsys):
    from mlops_kit.cli import main
    from mlops_kit.errors import PromotionRequired
    from mlops_kit.registry.controller import follow

    project, _ = pipeline
    repo = GitOpsRepo.from_settings(project.settings)
    repo.ensure()
    head = repo.head()
    with pytest.raises(PromotionRequired, match="mlops-kit request 2 --to-env production"):
        deploy(project, "production", 2)
    with pytest.raises(PromotionRequired, match="alias move"):
        follow(project, "production")
    env = {"MLOPS_KIT_STATE_DIR": str(project.state_dir)}
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        config = str(project.settings.project_file)
        assert main(["deploy", "production", "2", "--config", config]) == 2
    assert "Request a promotion instead" in capsys.readouterr().err
    assert repo.head() == head
    assert for_environment(project.settings, "production").status(project.model_name) is None

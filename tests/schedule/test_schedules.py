"""Schedules without the scheduler process: cron, the durable store, the CLI, the scale-out
forms (CronJob against the official Kubernetes schema, the GitHub workflow) and the checks
that guard auto-promotion."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jsonschema
import pytest
import yaml

from mlops_kit.cli import main
from mlops_kit.errors import ConfigError, InvalidCron
from mlops_kit.project import Project
from mlops_kit.schedule import cron, scaleout
from mlops_kit.schedule.retrain import auto_promotion, data_fingerprint, retrain
from mlops_kit.schedule.scheduler import Scheduler
from mlops_kit.schedule.store import Schedule, ScheduleStore, stamp
from tests.support import write_project

CRONJOB_SCHEMA = Path(__file__).resolve().parents[1] / "fixtures" / "kubernetes"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_project(tmp_path, state_dir=".mlops")


@pytest.fixture
def store(tmp_path: Path) -> ScheduleStore:
    return ScheduleStore.of(tmp_path / ".mlops")


# -- cron ------------------------------------------------------------------------------------


def test_six_fields_put_seconds_first_and_five_are_standard_cron():
    start = datetime(2026, 12, 4, 10, 0, 1, tzinfo=UTC)
    assert cron.next_after("*/2 * * * * *", start) == start + timedelta(seconds=1)
    assert cron.next_after("0 3 * * *", start) == datetime(2026, 12, 5, 3, 0, tzinfo=UTC)
    assert cron.five_fields("0 */5 * * * *") == "*/5 * * * *"
    assert cron.check("  0   3 * * 1-5 ") == "0 3 * * 1-5"


@pytest.mark.parametrize("bad", ["* * *", "61 * * * *", "a b c d e", "* * * * * * * *"])
def test_a_bad_cron_expression_is_refused_with_its_reason(bad: str):
    with pytest.raises(InvalidCron, match="invalid cron expression"):
        cron.check(bad)


def test_seconds_stay_on_the_embedded_scheduler():
    with pytest.raises(InvalidCron, match="seconds field runs only on the embedded scheduler"):
        cron.five_fields("*/2 * * * * *")


# -- the CLI and the store ---------------------------------------------------------------------


def test_bad_cron_is_one_line_exit_2_and_writes_nothing(config, tmp_path, capsys):
    code = main(["--config", str(config), "schedule", "add", "x", "--cron", "61 * * * *"])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: invalid cron expression '61 * * * *'") and "\n" not in err
    assert not (tmp_path / ".mlops" / "schedules" / "schedules.json").exists()


def test_add_list_pause_resume_remove(config, store, capsys):
    args = ["--config", str(config), "schedule"]
    assert (
        main(
            [
                *args,
                "add",
                "nightly",
                "--cron",
                "0 3 * * *",
                "--retries",
                "2",
                "--on-new-data",
                "-p",
                "n_estimators=50",
                "--as",
                "alice",
            ]
        )
        == 0
    )
    added = store.get("nightly")
    assert (added.retries, added.on_new_data, added.created_by) == (2, True, "alice")
    assert added.parameters == {"n_estimators": 50}
    assert added.next_time() == cron.next_after("0 3 * * *", datetime.now(UTC))
    capsys.readouterr()
    assert main([*args, "list"]) == 0
    out = capsys.readouterr().out
    assert "nightly  0 3 * * *" in out and added.next_run in out and "active" in out
    assert "scheduler: not running" in out

    assert main([*args, "pause", "nightly"]) == 0
    assert store.get("nightly").paused
    main([*args, "list"])
    assert "paused" in capsys.readouterr().out
    assert main([*args, "resume", "nightly"]) == 0
    assert not store.get("nightly").paused
    assert main([*args, "add", "nightly", "--cron", "0 4 * * *"]) == 2  # the name is taken
    assert main([*args, "remove", "nightly"]) == 0
    assert store.all() == []
    assert main([*args, "pause", "nightly"]) == 2
    assert "no schedule named 'nightly'" in capsys.readouterr().err


def test_bad_parameters_and_names_are_refused_before_anything_is_written(config, store):
    args = ["--config", str(config), "schedule", "add"]
    assert main([*args, "ok", "--cron", "0 3 * * *", "-p", "n_estimators=0"]) == 2
    assert main([*args, "ok", "--cron", "0 3 * * *", "-p", "n_estimator=5"]) == 2
    assert main([*args, "Not_A_Name", "--cron", "0 3 * * *"]) == 2
    assert main([*args, "ok", "--cron", "0 3 * * *", "--retries", "-1"]) == 2
    assert store.all() == []


def test_missed_fire_times_are_skipped_under_the_skip_policy(tmp_path, store):
    config = write_project(tmp_path, state_dir=".mlops", schedule={"missed": "skip"})
    project = Project.load(config)
    store.add(Schedule("nightly", "0 3 * * *"))
    past = datetime.now(UTC) - timedelta(days=2)
    store.update("nightly", lambda s: s.__class__(**{**s.__dict__, "next_run": stamp(past)}))
    Scheduler(project).tick()
    assert store.runs() == []
    assert store.get("nightly").next_time() > datetime.now(UTC)


# -- on_new_data, auto_promote checks ----------------------------------------------------------


def test_unchanged_data_skips_the_run_without_training(config):
    project = Project.load(config)
    fingerprint = data_fingerprint(project)
    result = retrain(project, since_fingerprint=fingerprint)
    assert result.status == "skipped" and result.version == ""
    assert "data unchanged" in result.summary()
    assert data_fingerprint(project, {"dataset": "iris"}) != fingerprint


def test_auto_promote_is_off_by_default_and_checked_before_training(tmp_path):
    assert auto_promotion(Project.load(write_project(tmp_path / "a"))) is None

    def policy(**approval: object) -> Project:
        envs = [
            {"name": "staging", "kind": "staging"},
            {"name": "production", "kind": "production", "approval": approval},
        ]
        return Project.load(write_project(tmp_path / "b", environments=envs, state_dir="s"))

    with pytest.raises(ConfigError, match="auto_promote needs identity: ssh"):
        auto_promotion(policy(auto_promote=True, identity="none"))
    with pytest.raises(ConfigError, match="not among its approvers"):
        auto_promotion(policy(auto_promote=True, approvers=["alice"]))
    with pytest.raises(ConfigError, match="no schedule key"):
        auto_promotion(policy(auto_promote=True, approvers=["alice", "scheduler"]))
    project = policy(auto_promote=True)
    assert main(["--config", str(project.settings.project_file), "schedule", "key"]) == 0
    with pytest.raises(ConfigError, match="'scheduler' is not in allowed_signers"):
        auto_promotion(project)


# -- scale-out ---------------------------------------------------------------------------------


def _validator() -> jsonschema.protocols.Validator:
    schema = json.loads((CRONJOB_SCHEMA / "cronjob-batch-v1.json").read_text())
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def test_cronjob_is_valid_against_the_kubernetes_schema_and_committed(config, store):
    project = Project.load(config)
    schedule = store.add(
        Schedule(
            "nightly",
            "0 3 * * *",
            retries=3,
            on_new_data=True,
            parameters={"n_estimators": 50},
            created_by="alice",
        )
    )
    text, sha = scaleout.commit_cronjob(project, schedule, actor="alice")
    doc = yaml.safe_load(text)
    _validator().validate(doc)
    spec = doc["spec"]
    assert (spec["schedule"], spec["concurrencyPolicy"]) == ("0 3 * * *", "Forbid")
    assert spec["jobTemplate"]["spec"]["backoffLimit"] == 3
    container = spec["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "mlops-kit:latest"
    assert container["command"] == [
        "mlops-kit",
        "retrain",
        "--quiet",
        "--schedule",
        "nightly",
        "--on-new-data",
        "-p",
        "n_estimators=50",
    ]
    from mlops_kit.gitops.repository import GitOpsRepo

    repo = GitOpsRepo.from_settings(project.settings)
    assert sha and repo.read_file(repo.branch, "schedules/nightly.yaml") == text
    # Beside it, the Argo CD Application that syncs schedules/ into staging's namespace.
    from tests.support.argocd import validate_application

    app = yaml.safe_load(repo.read_file(repo.branch, "argocd/schedules.yaml"))
    validate_application(app)
    assert app["spec"]["source"]["path"] == "schedules"
    assert app["spec"]["destination"]["namespace"] == doc["metadata"]["namespace"]
    assert app["spec"]["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True}
    import kubernetes_validate

    kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)


def test_the_schema_refuses_what_an_api_server_would():
    bad = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "x"},
        "spec": {
            "schedule": "* * * * *",
            "concurrencyPolicy": "Forbid",
            "bogus": 1,
            "jobTemplate": {"spec": {"template": {"spec": {"containers": []}}}},
        },
    }
    with pytest.raises(jsonschema.ValidationError, match="bogus"):
        _validator().validate(bad)


def test_github_workflow_runs_retrain_on_the_schedule(config, store, tmp_path):
    project = Project.load(config)
    schedule = store.add(Schedule("nightly", "0 15 3 * * *", retries=2, created_by="alice"))
    (path,) = scaleout.write_workflow(project, schedule, tmp_path)
    workflow = yaml.safe_load(path.read_text())
    assert workflow[True]["schedule"] == [{"cron": "15 3 * * *"}]
    assert workflow["concurrency"]["cancel-in-progress"] is False
    run = workflow["jobs"]["retrain"]["steps"][3]["run"]
    assert "mlops-kit --config mlops.yaml retrain --quiet --schedule nightly" in run
    assert "seq 0 2" in run
    actionlint = shutil.which("actionlint", path=str(Path(sys.executable).parent))
    if actionlint is not None:
        shellcheck = shutil.which("shellcheck", path=str(Path(sys.executable).parent)) or ""
        done = subprocess.run(
            [actionlint, "-no-color", f"-shellcheck={shellcheck}", str(path)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stdout + done.stderr
    with pytest.raises(InvalidCron):
        scaleout.render_workflow(project, store.add(Schedule("fast", "*/2 * * * * *")))


@pytest.mark.slow
def test_the_run_compiles_for_kubeflow_pipelines_v2(tmp_path, store):
    from tests.support.kfp import kfp_python

    envs = [
        {"name": "staging", "kind": "staging"},
        {"name": "production", "kind": "production", "approval": {"auto_promote": True}},
    ]
    config = write_project(
        tmp_path, state_dir=".mlops", environments=envs, schedule={"kfp_python": str(kfp_python())}
    )
    project = Project.load(config)
    schedule = store.add(Schedule("nightly", "0 3 * * *", retries=2, created_by="alice"))
    with pytest.raises(ConfigError, match="schedule.kfp_python .* does not exist"):
        scaleout.compile_kfp(
            Project.load(write_project(tmp_path / "b", schedule={"kfp_python": "nope"})),
            schedule,
            tmp_path / "x.yaml",
        )
    out = scaleout.compile_kfp(project, schedule, tmp_path / "build" / "pipeline.yaml")
    ir = yaml.safe_load(out.read_text())
    assert ir["pipelineInfo"]["name"] == "mlops-demo-retrain-nightly"
    tasks = ir["root"]["dag"]["tasks"]
    assert sorted(tasks) == ["auto-promote", "load-test-staging", "train-gate-stage"]
    assert tasks["load-test-staging"]["dependentTasks"] == ["train-gate-stage"]
    assert tasks["auto-promote"]["dependentTasks"] == ["load-test-staging"]
    assert all(t["retryPolicy"]["maxRetryCount"] == 2 for t in tasks.values())
    executors = ir["deploymentSpec"]["executors"]
    first = executors["exec-train-gate-stage"]["container"]
    assert first["image"] == "mlops-kit:latest"
    assert first["command"] == ["mlops-kit"] and first["args"][-1] == "02"
    promote = executors["exec-auto-promote"]["container"]
    assert "approver=scheduler" in promote["args"]


def test_an_auto_promoting_cronjob_mounts_the_schedule_key_from_a_secret(tmp_path, store):
    envs = [
        {"name": "staging", "kind": "staging"},
        {"name": "production", "kind": "production", "approval": {"auto_promote": True}},
    ]
    project = Project.load(write_project(tmp_path, state_dir=".mlops", environments=envs))
    doc = scaleout.render_cronjob(project, store.add(Schedule("nightly", "0 3 * * *")))
    _validator().validate(doc)
    pod = doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert {"name": "MLOPS_KIT_SCHEDULE__SIGNING_KEY", "value": scaleout.KEY_PATH} in container[
        "env"
    ]
    assert pod["volumes"][0]["secret"]["secretName"] == scaleout.KEY_SECRET
    assert container["volumeMounts"][0]["readOnly"] is True

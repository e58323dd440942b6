"""The real scheduler process firing real runs: a seconds-level cron retrains onto staging,
unchanged data is skipped, a failing run is retried exactly ``--retries`` times with backoff,
``down`` stops it; auto_promote rolls production out on the schedule's signed approval."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from mlops_kit.cli import main
from mlops_kit.process import pid_alive, wait_until
from mlops_kit.project import Project
from mlops_kit.promote.promotion import Promotions
from mlops_kit.registry.client import Registry
from mlops_kit.schedule import scheduler
from mlops_kit.schedule.store import Run, ScheduleStore
from tests.support import seeded_registry, write_project
from tests.support.signers import demo_signers, key

pytestmark = pytest.mark.slow

LENIENT_SLO = {"slo": {"p99_ms": 10_000, "max_error_rate": 0.5, "min_rps": 0.5}}


def subprocess_cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``mlops-kit`` as alice runs it, in a process of its own."""
    return subprocess.run(
        [sys.executable, "-m", "mlops_kit.cli", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "MLOPS_KIT_ACTOR": "alice"},
    )


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
    """``mlops-kit`` as alice, in this process (the scheduler it starts is a process anyway)."""
    monkeypatch.setenv("MLOPS_KIT_ACTOR", "alice")

    def run(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
        capsys.readouterr()
        code = main(["--config", str(config), *args])
        out = capsys.readouterr()
        return subprocess.CompletedProcess(list(args), code, out.out, out.err)

    return run


def project_file(
    tmp_path: Path, schedule: dict[str, object] | None = None, **settings: object
) -> Path:
    # A short load test: one user for one second, on loopback.
    schedule = {"load_users": 1, "load_duration_s": 1.0, **(schedule or {})}
    seeded_registry(tmp_path / ".mlops")  # the registry's schema is not what these are about
    return write_project(
        tmp_path,
        state_dir=".mlops",
        training={"n_estimators": 20},
        load_test=LENIENT_SLO,
        schedule=schedule,
        **settings,
    )


def wait_for_run(store: ScheduleStore, name: str, done: set[str], timeout: float) -> list[Run]:
    """The schedule's runs once ``done`` statuses have all been seen (newest first)."""

    def seen() -> list[Run] | None:
        runs = store.runs(name)
        return runs if done <= {r.status for r in runs} else None

    return wait_until(seen, timeout=timeout, interval=0.5, what=f"runs {done} of {name}")


@pytest.fixture
def stopped(tmp_path: Path):
    """Whatever a test starts under its state directory is stopped afterwards."""
    yield
    from mlops_kit.registry import server
    from mlops_kit.targets.local import stop_all

    # A project file of the same state directory, whatever the test left of its own.
    project = Project.load(write_project(tmp_path, state_dir=".mlops"))
    scheduler.stop(project)
    server.stop(project)
    stop_all(project.state_dir)


def test_a_seconds_cron_fires_retrains_onto_staging_then_skips_unchanged_data(
    tmp_path, stopped, cli
):
    config = project_file(tmp_path)
    added = cli(
        config,
        "schedule",
        "add",
        "often",
        "--cron",
        "*/2 * * * * *",
        "--retries",
        "1",
        "--on-new-data",
    )
    assert added.returncode == 0, added.stderr
    started = cli(config, "scheduler")
    assert started.returncode == 0, started.stderr
    project = Project.load(config)
    info = scheduler.status(project)
    assert info is not None

    store = ScheduleStore.of(project.state_dir)
    runs = wait_for_run(store, "often", {"succeeded", "skipped"}, timeout=150)
    first = [r for r in runs if r.status == "succeeded"][-1]
    assert first.trigger == "cron" and len(first.attempts) == 1 and first.version == "1"
    assert "v1 is on staging" in first.detail and Path(first.log).is_file()
    skipped = [r for r in runs if r.status == "skipped"][-1]
    assert skipped.started_at > first.started_at and "data unchanged" in skipped.detail
    assert store.get("often").last_fingerprint == first.fingerprint

    # A new version on staging, its promotion only requested: production is untouched.
    staging = Registry(project).by_alias("staging")
    assert staging is not None and staging.version == "1"
    assert Registry(project).by_alias("production") is None
    (request,) = Promotions(project).all()
    assert (request.status, request.requested_by, request.candidate) == ("pending", "alice", "1")
    assert "load_test" in str(request.evidence) or request.evidence

    listed = cli(config, "schedule", "list")
    assert "often" in listed.stdout and f"running (pid {info.pid})" in listed.stdout
    history = cli(config, "schedule", "runs", "often")
    assert "succeeded" in history.stdout and "skipped" in history.stdout

    down = cli(config, "down")
    assert down.returncode == 0 and "scheduler" in down.stdout, down.stdout + down.stderr
    assert scheduler.status(project) is None and not pid_alive(info.pid)
    assert "not running" in cli(config, "schedule", "list").stdout


def test_a_failing_run_is_retried_exactly_retries_times_with_backoff(tmp_path, stopped, cli):
    config = project_file(tmp_path, schedule={"backoff_s": 0.5})
    good = config.read_text()
    assert (
        cli(
            config, "schedule", "add", "flaky", "--cron", "* * * * * *", "--retries", "2"
        ).returncode
        == 0
    )
    assert cli(config, "schedule", "pause", "flaky").returncode == 0
    assert cli(config, "scheduler").returncode == 0
    project = Project.load(config)
    # A broken project file: every attempt stops at once with a configuration error.
    config.write_text(good.replace("n_estimators: 20", "n_estimators: 0"))
    store = ScheduleStore.of(project.state_dir)
    store.resume("flaky")
    (run,) = wait_for_run(store, "flaky", {"failed"}, timeout=60)[-1:]
    store.pause("flaky")
    assert [a.exit_code for a in run.attempts] == [2, 2, 2]
    starts = [datetime.fromisoformat(a.started_at) for a in run.attempts]
    ends = [datetime.fromisoformat(a.ended_at) for a in run.attempts]
    # Backoff doubles: 0.5 s, then 1 s (timestamps are to the second).
    assert (starts[1] - ends[0]).total_seconds() >= 0
    assert (starts[2] - ends[1]).total_seconds() >= 1
    log = Path(run.log).read_text()
    assert "retry 1 of 2 in 0.5 s" in log and "retry 2 of 2 in 1 s" in log
    assert log.count("starting attempt") == 3 and "n_estimators" in log
    assert "3 attempt(s) failed" in run.detail or "exited 2" in run.detail
    config.write_text(good)
    time.sleep(0.1)


def test_auto_promote_rolls_out_on_the_schedules_signed_approval(tmp_path, stopped):
    envs = [
        {"name": "staging", "kind": "staging"},
        {
            "name": "production",
            "kind": "production",
            "approval": {"approvers": ["bob", "scheduler"], "auto_promote": True},
        },
    ]
    config = project_file(tmp_path, environments=envs)
    project = Project.load(config)
    demo_signers(project, ("alice", "bob"))
    assert main(["--config", str(config), "schedule", "key"]) == 0
    public = project.state_dir / "keys" / "scheduler.key.pub"
    reviewer = str(key(project, "alice"))
    assert (
        main(
            [
                "--config",
                str(config),
                "signers",
                "add",
                "scheduler",
                str(public),
                "--key",
                reviewer,
                "--as",
                "alice",
            ]
        )
        == 0
    )

    done = subprocess_cli(config, "retrain", "--quiet")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "rolled_out (approved as scheduler, signed)" in done.stdout
    promotions = Promotions(project)
    (request,) = promotions.all()
    assert request.status == "rolled_out" and request.requested_by == "alice"
    (decision,) = request.decisions
    assert (decision.actor, decision.identity) == ("scheduler", "ssh")
    assert decision.signature.startswith("-----BEGIN SSH SIGNATURE-----")
    assert [ok for _, ok in promotions.verify_decisions(request)] == [True]
    production = Registry(project).by_alias("production")
    assert production is not None and production.version == "1"


def test_missed_fire_times_run_once_at_start(tmp_path, stopped):
    """``missed: run_once`` (the default): fire times missed while no scheduler ran make one
    run, marked ``missed``; the next fire time is then in the future again."""
    from datetime import UTC, timedelta

    from mlops_kit.schedule.store import Schedule, stamp

    config = project_file(tmp_path)
    good = config.read_text()
    project = Project.load(config)
    store = ScheduleStore.of(project.state_dir)
    store.add(Schedule("nightly", "0 3 * * *"))
    past = stamp(datetime.now(UTC) - timedelta(days=3))
    store.update("nightly", lambda s: Schedule(**{**s.__dict__, "next_run": past}))
    # The attempt fails at once on a broken project file: what is tested is that it is made.
    config.write_text(good.replace("n_estimators: 20", "n_estimators: 0"))
    scheduler.Scheduler(project).tick()
    (run,) = store.runs("nightly")
    assert (run.trigger, run.status, len(run.attempts)) == ("missed", "failed", 1)
    assert store.get("nightly").next_time() > datetime.now(UTC)
    config.write_text(good)


def test_down_stops_the_run_under_way_and_records_it_interrupted(tmp_path, stopped, cli):
    config = project_file(tmp_path)
    assert cli(config, "schedule", "add", "busy", "--cron", "* * * * * *").returncode == 0
    assert cli(config, "scheduler").returncode == 0
    project = Project.load(config)
    info = wait_until(
        lambda: (found := scheduler.status(project)) and found.child_pgid and found,
        timeout=30,
        what="an attempt under way",
    )
    assert pid_alive(info.child_pgid)
    down = cli(config, "down")
    assert down.returncode == 0 and "scheduler" in down.stdout
    assert not pid_alive(info.child_pgid) and not pid_alive(info.pid)
    (run,) = ScheduleStore.of(project.state_dir).runs("busy")
    assert run.status == "interrupted" and run.attempts[0].exit_code == -1

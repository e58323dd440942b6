"""The embedded scheduler: one background process firing the schedules of a state directory.

``mlops-kit scheduler`` starts it through the process layer (its own process group, output in
``<state_dir>/scheduler/scheduler.log``, a JSON record of what runs); ``mlops-kit down`` or
``mlops-kit scheduler stop`` stops it, and the run it was making with it. The loop:

- reads the schedules afresh on every tick, so ``schedule add/pause/resume/remove`` take
  effect without a restart;
- makes one run at a time: each attempt is ``mlops-kit retrain`` in a child process, its
  output appended to the run's log; a failed attempt is retried up to the schedule's
  ``retries`` with exponential backoff (``schedule.backoff_s``, doubling, at most
  ``schedule.max_backoff_s``); an attempt over ``schedule.run_timeout_s`` is stopped;
- fire times missed (the scheduler was stopped, or a run was still going) follow
  ``schedule.missed``: ``run_once`` runs once for all of them, ``skip`` drops them;
- with ``on_new_data``, passes the last successful run's data fingerprint, so a run on
  unchanged data does nothing (recorded as ``skipped``).

An flock makes it the only scheduler of its state directory.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_kit.errors import (
    LockTimeout,
    ProcessExited,
    ScheduleNotFound,
    SchedulerError,
    StopFailed,
    WaitTimeout,
)
from mlops_kit.process import (
    forget,
    locked,
    log_size,
    log_tail,
    pid_alive,
    read_record,
    spawn,
    stop_groups,
    wait_ready,
    write_record,
)
from mlops_kit.schedule import cron
from mlops_kit.schedule.store import Attempt, Run, Schedule, ScheduleStore, now, stamp

if TYPE_CHECKING:
    from datetime import datetime

    from mlops_kit.project import Project

logger = logging.getLogger(__name__)

SCHEDULER_DIR = "scheduler"
RECORD_FILE = "scheduler.json"
LOG_FILE = "scheduler.log"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
MAX_SLEEP = 1.0
"""Longest nap between two looks at the schedules (changes are seen within it)."""


@dataclass(frozen=True)
class SchedulerInfo:
    """The running scheduler: its process, log, and the attempt it is making, if any."""

    pid: int
    log: str
    started_at: str
    config: str
    child_pgid: int = 0
    """Process group of the ``retrain`` attempt under way (0: none)."""
    run: str = ""


def folder(project: Project) -> Path:
    return project.state_dir / SCHEDULER_DIR


def _read(project: Project) -> SchedulerInfo | None:
    return read_record(folder(project) / RECORD_FILE, SchedulerInfo)


def _alive(info: SchedulerInfo) -> bool:
    return pid_alive(info.pid, argument="scheduler")


def status(project: Project) -> SchedulerInfo | None:
    """The running scheduler of the project's state directory, or None."""
    info = _read(project)
    return info if info is not None and _alive(info) else None


def start(project: Project, *, timeout: float = START_TIMEOUT) -> SchedulerInfo:
    """Start the scheduler in the background; its record once it is ready.

    One runs per state directory: starting while one runs returns that one.
    """
    from mlops_kit.settings import require_project

    require_project(project.settings, "running schedules")
    running = status(project)
    if running is not None:
        return running
    log = folder(project) / LOG_FILE
    offset = log_size(log)
    config = str(project.settings.project_file)
    command = [sys.executable, "-m", "mlops_kit.cli", "--config", config, "scheduler", "run"]
    proc = spawn(command, log=log, what="the scheduler", cwd=project.settings.project_dir)

    def ready() -> bool:
        info = _read(project)
        return info is not None and info.pid == proc.pid

    try:
        wait_ready(
            ready, pid=proc.pid, timeout=timeout, log=log, log_offset=offset, what="the scheduler"
        )
    except (ProcessExited, WaitTimeout) as exc:
        stop_groups([proc.pid], grace=2.0)
        raise SchedulerError(f"the scheduler did not start: {exc}; log {log}") from None
    info = _read(project)
    assert info is not None
    return info


def stop(project: Project, *, timeout: float = STOP_TIMEOUT) -> bool:
    """Stop the scheduler and the attempt it is making; True if one was running."""
    info = _read(project)
    if info is None:
        return False
    alive = _alive(info)
    groups = [info.pid] if alive else []
    if info.child_pgid and pid_alive(info.child_pgid, argument="retrain"):
        groups.append(info.child_pgid)
    try:
        stop_groups(groups, grace=timeout, what="scheduler")
    except StopFailed as exc:
        raise SchedulerError(f"could not stop the scheduler (groups {exc.pgids})") from None
    (folder(project) / RECORD_FILE).unlink(missing_ok=True)
    return alive


class Scheduler:
    """The loop of the scheduler process (``mlops-kit scheduler run`` runs it in the foreground)."""

    def __init__(self, project: Project, stop_event: threading.Event | None = None) -> None:
        self.project = project
        self.settings = project.settings.schedule
        self.store = ScheduleStore.of(project.state_dir)
        self.stopping = stop_event or threading.Event()
        self.info: SchedulerInfo | None = None

    def serve(self) -> None:
        """Run until SIGTERM/SIGINT (or the stop event); SchedulerError if one already runs."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stopping.set())
        try:
            with locked(folder(self.project) / "scheduler.lock", timeout=0.5):
                self._announce()
                self._close_stale_runs()
                try:
                    while not self.stopping.is_set():
                        self.stopping.wait(self.tick())
                finally:
                    (folder(self.project) / RECORD_FILE).unlink(missing_ok=True)
        except LockTimeout:
            raise SchedulerError("a scheduler already runs for this state directory") from None

    def _close_stale_runs(self) -> None:
        """Runs left ``running`` by a scheduler that was killed are ``interrupted``."""
        for run in self.store.runs():
            if run.status == "running":
                self.store.save_run(
                    replace(
                        run,
                        status="interrupted",
                        ended_at=stamp(now()),
                        detail=run.detail or "the scheduler stopped",
                    )
                )

    def _announce(self, **changes: Any) -> None:
        if self.info is None:
            self.info = SchedulerInfo(
                pid=os.getpid(),
                log=str(folder(self.project) / LOG_FILE),
                started_at=stamp(now()),
                config=str(self.project.settings.project_file),
            )
        self.info = replace(self.info, **changes)
        write_record(folder(self.project) / RECORD_FILE, self.info)

    def tick(self) -> float:
        """Make the run that is due first, if any; the seconds to sleep before the next look."""
        moment = now()
        active = [s for s in self.store.all() if not s.paused]
        due = sorted((s for s in active if s.next_time() <= moment), key=Schedule.next_time)
        if due:
            schedule = due[0]
            late = (moment - schedule.next_time()).total_seconds()
            missed = late > self.settings.misfire_grace_s
            if missed and self.settings.missed == "skip":
                logger.info(
                    "schedule %s: skipping fire time(s) missed since %s",
                    schedule.name,
                    schedule.next_run,
                )
                self._advance(schedule.name, moment)
            else:
                try:
                    self.fire(schedule, "missed" if missed else "cron")
                except Exception:  # the loop outlives any one run: logged, then on time
                    logger.exception("schedule %s: the run could not be made", schedule.name)
                    self._advance(schedule.name, now())
            return 0.0
        if not active:
            return MAX_SLEEP
        wait = min(s.next_time() for s in active) - now()
        return max(0.0, min(MAX_SLEEP, wait.total_seconds()))

    def _advance(self, name: str, moment: datetime, **changes: Any) -> None:
        def change(s: Schedule) -> Schedule:
            return replace(s, next_run=stamp(cron.next_after(s.cron, moment)), **changes)

        try:
            self.store.update(name, change)
        except ScheduleNotFound:
            logger.info("schedule %s was removed while it ran", name)

    def fire(self, schedule: Schedule, trigger: str) -> Run:
        """One run of ``schedule``: attempts until one succeeds or the retries are spent."""
        run = self.store.new_run(schedule.name, trigger)
        logger.info("schedule %s: run %s (%s)", schedule.name, run.id, trigger)
        attempts = schedule.retries + 1
        for number in range(1, attempts + 1):
            run = self._attempt(schedule, run, number)
            if run.status != "running" or self.stopping.is_set():
                break
            if number < attempts:
                delay = min(
                    self.settings.backoff_s * 2 ** (number - 1), self.settings.max_backoff_s
                )
                self._note(
                    run,
                    f"attempt {number} failed; retry {number} of {schedule.retries} in {delay:g} s",
                )
                if self.stopping.wait(delay):
                    break
        if run.status == "running":
            detail = run.detail or f"{len(run.attempts)} attempt(s) failed"
            if self.stopping.is_set():
                run = replace(run, status="interrupted", detail=detail)
            else:
                run = replace(run, status="failed", detail=detail)
        run = replace(run, ended_at=stamp(now()))
        self.store.save_run(run)
        self._note(run, f"run {run.id} {run.status}: {run.detail}")
        changes = {"last_fingerprint": run.fingerprint} if run.status == "succeeded" else {}
        self._advance(schedule.name, now(), **changes)
        return run

    def _note(self, run: Run, line: str) -> None:
        with open(run.log, "a") as handle:
            handle.write(f"--- mlops-kit {stamp(now())}: {line}\n")

    def _attempt(self, schedule: Schedule, run: Run, number: int) -> Run:
        result_file = Path(run.log).with_suffix(f".attempt-{number}.result")
        command = retrain_command(self.project, schedule, result_file)
        env = {**os.environ, "MLOPS_KIT_ACTOR": schedule.created_by or "scheduler"}
        started = stamp(now())
        proc = spawn(
            command,
            log=Path(run.log),
            what=f"attempt {number}: retrain",
            env=env,
            cwd=self.project.settings.project_dir,
        )
        self._announce(child_pgid=proc.pid, run=run.id)
        code = self._wait(proc.pid)
        self._announce(child_pgid=0, run="")
        attempt = Attempt(number, started, stamp(now()), code)
        run = replace(run, attempts=(*run.attempts, attempt))
        result = _result(result_file) if code == 0 else None
        if result is not None:
            run = replace(
                run,
                status="skipped" if result["status"] == "skipped" else "succeeded",
                detail=result["summary"],
                fingerprint=result["fingerprint"],
                version=result.get("version", ""),
            )
        else:
            tail = log_tail(Path(run.log), 1)
            run = replace(run, detail=f"attempt {number} exited {code}: {tail}")
        self.store.save_run(run)
        return run

    def _wait(self, pid: int) -> int:
        """The attempt's exit code; stopped (and -1) on timeout or when the scheduler stops."""
        from mlops_kit.process import child

        proc = child(pid)
        assert proc is not None
        deadline = time.monotonic() + self.settings.run_timeout_s
        while proc.poll() is None:
            if self.stopping.wait(0.2):
                stop_groups([pid], grace=5.0, what="retrain")
                return -1
            if time.monotonic() > deadline:
                logger.warning(
                    "retrain pid %d over %.0f s; stopping it", pid, self.settings.run_timeout_s
                )
                stop_groups([pid], grace=5.0, what="retrain")
                return -1
        code = proc.returncode
        forget(pid)
        return code


def _result(path: Path) -> dict[str, Any] | None:
    """The outcome ``retrain --result`` wrote; None when it wrote none (a failed attempt)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and {"status", "summary"} <= data.keys() else None


def retrain_command(project: Project, schedule: Schedule, result_file: Path) -> list[str]:
    """The ``mlops-kit retrain`` argv one attempt of ``schedule`` runs."""
    config = str(project.settings.project_file)
    command = [
        sys.executable,
        "-m",
        "mlops_kit.cli",
        "--config",
        config,
        "retrain",
        "--quiet",
        "--schedule",
        schedule.name,
        "--result",
        str(result_file),
    ]
    if schedule.on_new_data and schedule.last_fingerprint:
        command += ["--since-fingerprint", schedule.last_fingerprint]
    return command + schedule.parameter_args()

"""Durable schedule state in the state directory: the schedules, and every run with its log.

``<state_dir>/schedules/schedules.json`` holds the schedules (name, cron, retries, paused,
the next fire time, the data fingerprint of the last successful run); each run is a JSON
record beside its log under ``runs/<name>/``. Every change is read-modify-write under an
flock and written atomically, so the CLI and the scheduler process never lose each other's
changes and a reader never sees half a file.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from mlops_kit.errors import ConfigError, ScheduleNotFound
from mlops_kit.process import locked, write_json
from mlops_kit.process.records import read_record, write_record
from mlops_kit.schedule import cron

SCHEDULES_DIR = "schedules"
STATE_FILE = "schedules.json"
_NAME_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789-"

RunStatus = Literal["running", "succeeded", "failed", "skipped", "interrupted"]


def now() -> datetime:
    return datetime.now(UTC)


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


@dataclass(frozen=True)
class Schedule:
    """One schedule: when it fires, how often a failed run is retried, whether it is paused."""

    name: str
    cron: str
    retries: int = 0
    on_new_data: bool = False
    paused: bool = False
    parameters: dict[str, Any] = field(default_factory=dict)
    """Notebook parameters of each run (``-p KEY=VALUE``), as for ``mlops-kit run``."""
    created_by: str = ""
    """Who added it: the requester of record of the promotions its runs open."""
    created_at: str = ""
    next_run: str = ""
    """The next fire time (UTC, ISO 8601); in the past when one was missed."""
    last_fingerprint: str = ""
    """Data fingerprint of the last successful run (what ``on_new_data`` compares with)."""

    def next_time(self) -> datetime:
        return parse(self.next_run)

    def parameter_args(self) -> list[str]:
        """The parameters as ``-p KEY=VALUE`` arguments (values read back as YAML)."""
        args = []
        for key, value in self.parameters.items():
            text = value if isinstance(value, str) else json.dumps(value)
            args += ["-p", f"{key}={text}"]
        return args


@dataclass(frozen=True)
class Attempt:
    """One try of a run: when, its exit code."""

    number: int
    started_at: str
    ended_at: str = ""
    exit_code: int | None = None


@dataclass(frozen=True)
class Run:
    """One fire of a schedule, with all its attempts; its log is ``log``."""

    id: str
    schedule: str
    trigger: str
    """``cron`` (on time), ``missed`` (run once for missed fire times) or ``manual``."""
    started_at: str
    log: str
    status: RunStatus = "running"
    attempts: tuple[Attempt, ...] = ()
    ended_at: str = ""
    detail: str = ""
    """What the run did: the version it put on staging, the request it opened, why it failed."""
    fingerprint: str = ""
    version: str = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Run:
        attempts = tuple(Attempt(**a) for a in data.get("attempts", ()))
        return cls(**{**data, "attempts": attempts})


def check_name(name: str) -> str:
    """A schedule name: lowercase letters, digits and dashes (it names a CronJob too)."""
    ok = 0 < len(name) <= 52 and set(name) <= set(_NAME_CHARS) and name[0] != "-"
    if not ok or name.endswith("-"):
        raise ConfigError(
            f"schedule name {name!r}: lowercase letters, digits and '-', at most 52 characters"
        )
    return name


@dataclass
class ScheduleStore:
    """The schedules and runs of one state directory."""

    root: Path

    @classmethod
    def of(cls, state_dir: Path) -> ScheduleStore:
        return cls(Path(state_dir) / SCHEDULES_DIR)

    # -- schedules ---------------------------------------------------------------------------

    def all(self) -> list[Schedule]:
        """Every schedule, by name."""
        try:
            data = json.loads((self.root / STATE_FILE).read_text())
        except FileNotFoundError:
            return []
        except ValueError as exc:
            raise ConfigError(f"{self.root / STATE_FILE} is not valid JSON: {exc}") from None
        return sorted((Schedule(**s) for s in data.get("schedules", [])), key=lambda s: s.name)

    def get(self, name: str) -> Schedule:
        for schedule in self.all():
            if schedule.name == name:
                return schedule
        raise ScheduleNotFound(name, [s.name for s in self.all()])

    def add(self, schedule: Schedule) -> Schedule:
        """Add a new schedule (its cron checked first); ConfigError if the name is taken."""
        check_name(schedule.name)
        expression = cron.check(schedule.cron)
        if schedule.retries < 0 or schedule.retries > 20:
            raise ConfigError(f"--retries {schedule.retries}: between 0 and 20")
        moment = now()
        added = replace(
            schedule,
            cron=expression,
            created_at=schedule.created_at or stamp(moment),
            next_run=stamp(cron.next_after(expression, moment)),
        )
        with self._editing() as schedules:
            if added.name in schedules:
                raise ConfigError(f"a schedule named {added.name!r} exists; remove it first")
            schedules[added.name] = added
        return added

    def update(self, name: str, change: Callable[[Schedule], Schedule]) -> Schedule:
        """Apply ``change`` to the schedule ``name`` under the lock; the new schedule."""
        with self._editing() as schedules:
            if name not in schedules:
                raise ScheduleNotFound(name, sorted(schedules))
            schedules[name] = change(schedules[name])
            return schedules[name]

    def pause(self, name: str) -> Schedule:
        return self.update(name, lambda s: replace(s, paused=True))

    def resume(self, name: str) -> Schedule:
        """Unpause; fire times missed while paused are skipped, not run."""
        moment = now()
        return self.update(
            name,
            lambda s: replace(s, paused=False, next_run=stamp(cron.next_after(s.cron, moment))),
        )

    def remove(self, name: str) -> Schedule:
        """Delete the schedule (its run history stays, for the record)."""
        with self._editing() as schedules:
            if name not in schedules:
                raise ScheduleNotFound(name, sorted(schedules))
            return schedules.pop(name)

    @contextmanager
    def _editing(self) -> Iterator[dict[str, Schedule]]:
        with locked(self.root / ".lock"):
            schedules = {s.name: s for s in self.all()}
            yield schedules
            write_json(
                self.root / STATE_FILE, {"schedules": [asdict(s) for s in schedules.values()]}
            )

    # -- runs --------------------------------------------------------------------------------

    def new_run(self, schedule: str, trigger: str) -> Run:
        moment = now()
        run_id = f"{moment.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"
        folder = self.root / "runs" / schedule
        run = Run(run_id, schedule, trigger, stamp(moment), str(folder / f"{run_id}.log"))
        self.save_run(run)
        return run

    def save_run(self, run: Run) -> None:
        write_record(self.root / "runs" / run.schedule / f"{run.id}.json", run)

    def runs(self, schedule: str | None = None, limit: int | None = None) -> list[Run]:
        """Runs, newest first (of one schedule, or all)."""
        pattern = f"{schedule}/*.json" if schedule else "*/*.json"
        found = []
        for path in (self.root / "runs").glob(pattern):
            record = read_record(path, dict)
            if record is not None:
                found.append(Run.from_dict(record))
        found.sort(key=lambda r: (r.started_at, r.id), reverse=True)
        return found[:limit] if limit else found

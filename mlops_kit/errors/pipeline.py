"""Errors of schedules, your own code and data, pipelines and snapshots."""

from __future__ import annotations

from mlops_kit.errors.core import ConfigError, ToolkitError

# --- schedules


class InvalidCron(ConfigError):
    """A schedule's cron expression cannot be read; nothing was written."""

    def __init__(self, expression: str, problem: str) -> None:
        super().__init__(f"invalid cron expression {expression!r}: {problem}")
        self.expression = expression


class ScheduleNotFound(ConfigError):
    """No schedule has that name; the message lists the ones there are."""

    def __init__(self, name: str, known: list[str]) -> None:
        listed = ", ".join(known) if known else "none yet (`mlops-kit schedule add`)"
        super().__init__(f"no schedule named {name!r}; schedules: {listed}")
        self.name = name


class SchedulerError(ToolkitError):
    """The scheduler process could not be started or stopped, or a run could not be made."""


# --- your own code and data


class DataError(ConfigError):
    """The training data cannot be read or does not fit what the project declares (a missing
    column, a label of another task); the message names the file or column."""


class EntrypointError(ToolkitError):
    """A training entrypoint raised or returned what the toolkit cannot register; the message
    names the entrypoint (``package.module:function``) and what was wrong."""

    def __init__(self, entrypoint: str, problem: str) -> None:
        super().__init__(f"training entrypoint {entrypoint!r} {problem}")
        self.entrypoint = entrypoint
        self.problem = problem


class EntrypointNotFound(EntrypointError, ConfigError):
    """A training entrypoint cannot be imported or is not a function (exit code 2)."""

    exit_code = 2


# --- pipelines and snapshots


class StepFailed(ToolkitError):
    """A pipeline step raised (after its retries, if it is retryable); it names itself.

    ``attempts`` is how often it ran; the outputs of the steps before it stay cached, so a
    re-run after the fix starts here.
    """

    def __init__(self, step: str, attempts: int, reason: str) -> None:
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        super().__init__(f"pipeline step {step!r} failed{tries}: {reason}")
        self.step = step
        self.attempts = attempts
        self.reason = reason


class StepMisconfigured(StepFailed, ConfigError):
    """A pipeline step stopped on a configuration or data error: never retried, exit code 2."""


class DataValidationFailed(ToolkitError):
    """The data broke an expectation of the ``validate`` step; the message names the column."""

    def __init__(self, column: str | None, problem: str) -> None:
        where = f"column {column!r}: " if column else ""
        super().__init__(f"data validation failed: {where}{problem}")
        self.column = column
        self.problem = problem


class SnapshotNotFound(ConfigError):
    """A model version has no snapshot (registered before snapshots, or by other means)."""

    def __init__(self, model: str, version: str) -> None:
        super().__init__(f"{model} v{version} has no snapshot (`mlops-kit snapshots` lists them)")
        self.model = model
        self.version = version


class SnapshotCorrupt(ToolkitError):
    """A stored object no longer has the digest it is stored under: the store was altered."""

    def __init__(self, digest: str, what: str = "object") -> None:
        super().__init__(
            f"snapshot store {what} {digest[:12]} is corrupt: its content no longer has its sha256"
        )
        self.digest = digest


class ReproductionMismatch(ToolkitError):
    """``reproduce`` computed metrics that differ from the registered ones beyond tolerance."""

    def __init__(self, model: str, version: str, metrics: list[str]) -> None:
        super().__init__(
            f"{model} v{version} did not reproduce: {', '.join(metrics)} differ beyond tolerance"
        )
        self.metrics = metrics

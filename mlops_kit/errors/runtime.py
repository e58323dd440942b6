"""Errors of processes, the seldon environment, artifact stores, training jobs, registry DB."""

from __future__ import annotations

from mlops_kit.errors.core import ConfigError, RegistryError, TargetError, ToolkitError

# --- process layer
# (and the seldon environment errors, moved here from serving/seldon.py)


class SeldonEnvMissing(ConfigError, TargetError):
    """No environment with seldon-core is configured or found; the message says how to make one.

    A :class:`ConfigError` (exit code 2) that targets may raise, as it is also a
    :class:`TargetError`.
    """


class SeldonEnvError(ToolkitError):
    """Creating the seldon environment failed; ``output`` holds the end of pip's output."""

    def __init__(self, message: str, output: str = "") -> None:
        super().__init__(f"{message}\n{output}" if output else message)
        self.output = output


class ProcessError(ToolkitError):
    """A child process (a server the toolkit runs) could not be started, awaited or stopped."""


class ProcessExited(ProcessError):
    """A process exited while it was awaited; ``tail`` holds the last lines of its log."""

    def __init__(
        self, what: str, returncode: int | None, log: str | None = None, tail: str = ""
    ) -> None:
        code = f" with code {returncode}" if returncode is not None else ""
        where = f"; last lines of {log}:\n{tail}" if log else ""
        super().__init__(f"{what} exited{code} while starting{where}")
        self.what = what
        self.returncode = returncode
        self.log = log
        self.tail = tail


class WaitTimeout(ProcessError):
    """Something awaited did not happen within its time limit."""

    def __init__(self, what: str, timeout: float, detail: str = "") -> None:
        super().__init__(f"timed out after {timeout:g} s waiting for {what}{detail}")
        self.what = what
        self.timeout = timeout


class LockTimeout(WaitTimeout):
    """A file lock stayed held by someone else for longer than the time limit."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__(f"the lock {path}", timeout)
        self.path = path


class StopFailed(ProcessError):
    """Process groups survived SIGKILL; ``pgids`` lists them."""

    def __init__(self, pgids: list[int]) -> None:
        super().__init__(
            "could not stop process group(s) " + ", ".join(str(pgid) for pgid in pgids)
        )
        self.pgids = pgids


class ArtifactStoreError(ToolkitError):
    """Model artifacts could not be read from the artifact store (no such object, no
    credentials, no endpoint); ``uri`` is what was asked for."""

    def __init__(self, uri: str, problem: str) -> None:
        super().__init__(f"could not download the model at {uri}: {problem}")
        self.uri = uri


class TrainingJobFailed(ToolkitError):
    """A SageMaker training job ended ``Failed`` or ``Stopped``; ``reason`` is SageMaker's."""

    def __init__(self, job_name: str, status: str, reason: str = "") -> None:
        why = f": {reason}" if reason else ""
        super().__init__(f"training job {job_name} ended {status}{why}")
        self.job_name = job_name
        self.status = status


# --- registry database


class RegistryUnreachable(RegistryError):
    """The registry's database server did not answer or refused the connection.

    ``uri`` is the registry URI with its password redacted; ``reason`` is the driver's one
    line (connection refused, authentication failed, no such database).
    """

    def __init__(self, uri: str, reason: str) -> None:
        super().__init__(f"cannot reach the registry database {uri}: {reason}")
        self.uri = uri
        self.reason = reason

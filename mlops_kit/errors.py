"""The toolkit's exceptions: one root, structured subclasses, no third-party imports."""

from __future__ import annotations


class ToolkitError(Exception):
    """Root of every error the toolkit raises on purpose.

    ``exit_code`` is what the CLI exits with: 2 for usage and configuration errors,
    1 for a pipeline step that ran and failed. A notebook cell that raised one exits the same:
    the runner finds the class in this module by its name, so every toolkit error lives here.
    """

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(ToolkitError):
    """The project file, an environment variable or a parameter has a bad value."""

    exit_code = 2


class PromotionRequired(ConfigError):
    """A command would move a production environment without an approved promotion request."""

    def __init__(self, environment: str, what: str, version: str | int | None = None) -> None:
        version_text = f" {version}" if version is not None else ""
        super().__init__(
            f"{environment} is a production environment: {what} never changes it. Request a "
            f"promotion instead: `mlops-kit request{version_text} --to-env {environment}`, "
            "then another person approves it (`mlops-kit approve REQUEST --as NAME`)"
        )
        self.environment = environment


class ParameterError(ConfigError):
    """A notebook or CLI parameter is unknown or has a bad value."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"invalid parameter {name!r}: {problem}")
        self.name = name
        self.problem = problem


class MissingDependencyError(ConfigError):
    """An optional dependency is needed for what was asked; the message says how to install it."""

    def __init__(self, package: str, extra: str) -> None:
        super().__init__(
            f"{package} is not installed; install it with: pip install 'mlops-kit[{extra}]'"
        )
        self.package = package
        self.extra = extra


class RegistryError(ToolkitError):
    """The model registry refused or failed an operation."""


class ModelVersionNotFound(RegistryError):
    """No model version matches a name and version or alias."""

    def __init__(self, name: str, ref: str) -> None:
        super().__init__(f"model {name!r} has no version {ref!r}")
        self.name = name
        self.ref = ref


class GateFailed(ToolkitError):
    """The challenger did not pass the quality gate; ``verdict`` holds the figures."""

    def __init__(self, message: str, verdict: object | None = None) -> None:
        super().__init__(message)
        self.verdict = verdict


class SchemaMismatch(ToolkitError):
    """Data did not fit a model's input schema; the message names why, never the data."""


class NotebookFailed(ToolkitError):
    """A notebook cell raised while the runner executed it; the executed notebook is kept."""

    def __init__(
        self,
        notebook: str,
        cell_index: int,
        ename: str,
        evalue: str,
        output_path: str,
        *,
        exit_code: int = 1,
        execution_count: int | None = None,
    ) -> None:
        # The cell as JupyterLab labels it in the executed notebook (and papermill's banner
        # names it): In [n]. Without a count, its 1-based position among all cells.
        cell = f"In [{execution_count}]" if execution_count is not None else f"#{cell_index + 1}"
        super().__init__(
            f"{notebook}, cell {cell}: {ename}: {evalue} (executed notebook kept at {output_path})"
        )
        self.notebook = notebook
        self.cell_index = cell_index
        """Index of the cell in the executed notebook's cells (0-based, as papermill counts)."""
        self.execution_count = execution_count
        """The cell's execution count: the ``In [n]`` JupyterLab shows beside it."""
        self.ename = ename
        self.evalue = evalue
        self.output_path = output_path
        self.exit_code = exit_code


class GitOpsError(ToolkitError):
    """A git operation on the GitOps repository failed."""


class TargetError(ToolkitError):
    """A deployment target could not create, update, inspect or delete a deployment."""


class TargetNotFound(ConfigError):
    """No deployment target is registered under a name."""

    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(
            f"no deployment target named {name!r}; known targets: {', '.join(sorted(known))}"
        )
        self.name = name


class DeploymentTimeout(TargetError):
    """A deployment did not become ready within its time limit."""


class UnsupportedSpec(ConfigError, TargetError):
    """A deployment spec asks for what its target cannot honour; nothing was changed."""

    def __init__(self, target: str, key: str, problems: list[str]) -> None:
        super().__init__(f"the {target} target cannot apply {key}: " + "; ".join(problems))
        self.target = target
        self.key = key
        self.problems = problems


class SmokeTestFailed(ToolkitError):
    """An endpoint answered a smoke test wrongly; ``failures`` lists each problem."""

    def __init__(self, endpoint: str, failures: list[str]) -> None:
        super().__init__(f"smoke test of {endpoint} failed: " + "; ".join(failures))
        self.endpoint = endpoint
        self.failures = failures


class ApprovalRefused(ToolkitError):
    """A decision on a promotion request is not allowed by the approval policy; nothing changed."""

    def __init__(self, request_id: str, actor: str, reason: str) -> None:
        super().__init__(f"{actor!r} may not decide on {request_id}: {reason}")
        self.request_id = request_id
        self.actor = actor
        self.reason = reason


class RequestNotFound(ConfigError):
    """No promotion request has this id."""

    def __init__(self, request_id: str, known: list[str]) -> None:
        listing = ", ".join(known[-5:]) if known else "none"
        super().__init__(f"no promotion request {request_id!r}; recent: {listing}")
        self.request_id = request_id


class PromotionFailed(ToolkitError):
    """An approved promotion did not roll out; the environment was rolled back."""

    def __init__(self, request_id: str, reason: str) -> None:
        super().__init__(f"promotion {request_id} failed and was rolled back: {reason}")
        self.request_id = request_id
        self.reason = reason


# --- verify


class InferenceFailed(ToolkitError):
    """An inference request got no answer or an error answer; carries the HTTP status."""

    def __init__(self, url: str, message: str, status_code: int | None = None) -> None:
        super().__init__(f"inference at {url} failed: {message}")
        self.url = url
        self.reason = message
        self.status_code = status_code


class OutputNotFound(ToolkitError, ValueError):
    """An inference answer lacks the output asked for (or has none); also a ``ValueError``.

    A ``ValueError`` too, so callers that treat any undecodable answer alike need no new clause.
    """

    def __init__(self, output: str | None, available: list[str | None]) -> None:
        message = (
            "the response has no outputs"
            if output is None or not available
            else f"the response has no output {output!r}; it has {available}"
        )
        super().__init__(message)
        self.output = output
        self.available = available


class MetricsUnavailable(ToolkitError):
    """A server's Prometheus ``/metrics`` endpoint could not be read or parsed."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"could not scrape metrics at {url}: {reason}")
        self.url = url
        self.reason = reason


class PrometheusMissing(ConfigError):
    """The Prometheus program is not installed; the message says how to get it."""

    def __init__(self, binary: str) -> None:
        super().__init__(
            f"Prometheus ({binary!r}) is not installed; install it with: apt-get install "
            "prometheus (Debian/Ubuntu), or set monitor.binary to its path. Without it the "
            "toolkit reads the endpoints' /metrics directly"
        )
        self.binary = binary


class MonitorError(ToolkitError):
    """The local Prometheus could not be started, reached or stopped."""


class QueryFailed(MetricsUnavailable):
    """A PromQL query was refused or could not be answered by the Prometheus HTTP API."""

    def __init__(self, url: str, expr: str, reason: str) -> None:
        ToolkitError.__init__(self, f"Prometheus at {url} could not answer {expr!r}: {reason}")
        self.url = url
        self.reason = reason
        self.expr = expr


class LoadTestError(ToolkitError):
    """A load test could not run or did not finish: no figures to judge."""


class EndpointUnavailable(LoadTestError):
    """The endpoint to load does not answer, or refuses the request body, before the load starts."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"load test not started: {url} {reason}")
        self.url = url
        self.reason = reason


class LoadGeneratorFailed(LoadTestError):
    """The load generator process exited with an error; ``output`` is the end of its stderr."""

    def __init__(self, returncode: int | None, output: str) -> None:
        super().__init__(
            f"the load generator failed (exit code {returncode}); its last output:\n"
            + (output or "(none)")
        )
        self.returncode = returncode
        self.output = output


class RemoteLoadRefused(ConfigError):
    """A load test was aimed at a host that is not loopback without ``allow_remote=True``."""

    def __init__(self, url: str, host: str, detail: str = "") -> None:
        super().__init__(
            f"refusing to load {url}: {host!r} is not a loopback address{detail}; load tests "
            "only target this machine unless allowed (allow_remote=True, or load_test.allow_remote "
            "in the project file) — and only aim them at systems you are entitled to load"
        )
        self.url = url
        self.host = host
        self.detail = detail


class SloFailed(ToolkitError):
    """A load test missed its service-level objectives; ``verdict`` holds the figures."""

    def __init__(
        self, reasons: list[str], environment: str | None = None, verdict: object | None = None
    ) -> None:
        where = f" in {environment}" if environment else ""
        super().__init__(f"load test{where} missed its SLO: " + "; ".join(reasons))
        self.reasons = reasons
        self.environment = environment
        self.verdict = verdict


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

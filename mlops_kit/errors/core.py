"""The root error, configuration, registry, gates, notebooks, GitOps, targets and promotions."""

from __future__ import annotations


class ToolkitError(Exception):
    """Root of every error the toolkit raises on purpose.

    ``exit_code`` is what the CLI exits with: 2 for usage and configuration errors,
    1 for a pipeline step that ran and failed. A notebook cell that raised one exits the same:
    the runner finds the class in :mod:`mlops_kit.errors` by its name, so every toolkit error
    is exported there.
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

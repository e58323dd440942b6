"""The deployment target interface: what every target (local, Kubernetes, SageMaker) promises.

The contract is enforced in code, in the manner of Kedro's ``load``/``_load``: the public
methods of :class:`DeploymentTarget` check what they are given (the environment, the spec
fields the target can honour) and turn any backend failure into a
:class:`~mlops_kit.errors.TargetError`; implementations write the underscored methods. Their
docstrings, like those of MLflow's ``BaseDeploymentClient``, state what each must do: block
until a deployment is ready, delete idempotently, report drift honestly.
"""

from __future__ import annotations

import abc
import builtins
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from mlops_kit import display
from mlops_kit.closing import Closing
from mlops_kit.errors import ConfigError, TargetError, ToolkitError, UnsupportedSpec

if TYPE_CHECKING:
    import pandas as pd

    from mlops_kit.deployment import Candidate, DeploymentSpec
    from mlops_kit.project import Project
    from mlops_kit.settings import EnvironmentSettings, Settings

Protocol = Literal["v2", "seldon"]
"""How an endpoint is spoken to: the Open Inference Protocol (V2), or Seldon's v1 protocol."""


@dataclass(frozen=True)
class DeploymentStatus(display.Rich):
    """What a target observes about one deployment, right now."""

    environment: str
    """Environment the deployment belongs to."""
    model_name: str
    """Registered model name, which is also the deployment's name."""
    version: str | None
    """Model version being served now; None when nothing answers."""
    ready: bool
    """True only when the endpoint answers for ``version`` at the moment of asking."""
    endpoint: str | None
    """Base URL of the inference endpoint, e.g. ``http://127.0.0.1:8080/v2/models/wine``."""
    detail: str = ""
    """Why it is not ready, or other human-readable context."""
    pid: int | None = None
    """Server process id, for targets that run local processes."""
    protocol: Protocol = "v2"
    """What ``endpoint`` speaks: ``v2`` (append ``/infer``) or ``seldon`` (POST to it)."""
    metrics_url: str | None = None
    """Prometheus metrics of the server, where the target knows them."""
    candidate: Candidate | None = None
    """The candidate served beside ``version`` (weight, mirror) as observed; None when there is
    none or the target does not report it (sync then re-applies a spec that has one)."""

    def summary(self) -> str:
        """One line: what serves where, or why nothing does."""
        serves = f"{self.model_name} v{self.version}" if self.version else self.model_name
        state = "ready" if self.ready else "not ready"
        where = f" at {self.endpoint}" if self.endpoint else ""
        why = f" ({self.detail})" if self.detail else ""
        return f"{self.environment}: {serves} {state}{where}{why}"

    def _repr_html_(self) -> str:
        return display.verdict(self.ready, self.summary(), "ready" if self.ready else "not ready")

    def _figure_(self) -> display.Figure:
        return display.Figure(self.environment, self.summary(), self.ready)


@dataclass(frozen=True)
class Capabilities:
    """What of a :class:`~mlops_kit.deployment.DeploymentSpec` a target can honour.

    A spec asking for more is refused with :class:`~mlops_kit.errors.UnsupportedSpec` before
    anything changes; nothing is silently ignored.
    """

    flavours: frozenset[str] = frozenset({"mlflow", "sklearn", "custom", "embedded"})
    """Server flavours the target can run."""
    max_replicas: int | None = None
    """Most replicas it can run (None: no limit of its own)."""
    min_replicas: int = 0
    """Fewest replicas (1 for a target that cannot scale a deployment to zero)."""
    traffic_split: bool = True
    """Whether a spec may take less than 100 % of the environment's traffic."""
    preview: bool = False
    """Whether :meth:`DeploymentTarget.preview` can serve a candidate beside the live version
    on an endpoint no client uses, so it is verified before it takes any traffic."""
    sticky_routing: bool = False
    """Whether a candidate's ``sticky_header`` is honoured (a caller pinned to one version);
    elsewhere a canary's split is drawn at random per request."""


@dataclass
class Check:
    """One thing set-up verified."""

    name: str
    ok: bool
    detail: str


@dataclass
class SetupReport(display.Rich):
    """What set-up created and verified."""

    target: str
    checks: list[Check] = field(default_factory=list)
    environments: list[dict[str, Any]] = field(default_factory=list)
    applications: list[dict[str, Any]] = field(default_factory=list)
    """The Argo CD Applications rendered (Kubernetes only), one row each."""

    @property
    def ok(self) -> bool:
        """True when every check passed."""
        return all(c.ok for c in self.checks)

    def table(self) -> pd.DataFrame:
        """The checks as a table."""
        import pandas as pd

        return pd.DataFrame([vars(c) for c in self.checks])

    def environments_table(self) -> pd.DataFrame:
        """The configured environments as a table."""
        import pandas as pd

        return pd.DataFrame(self.environments)

    def applications_table(self) -> pd.DataFrame:
        """The Argo CD Applications as a table (empty unless a Kubernetes target is set up)."""
        import pandas as pd

        columns = ["application", "environment", "namespace", "path", "sync", "applied"]
        return pd.DataFrame(self.applications, columns=columns)

    def _repr_html_(self) -> str:
        rows = [{"check": c.name, "result": _ok(c.ok), "detail": c.detail} for c in self.checks]
        return display.table(rows)

    def _figure_(self) -> display.Figure:
        failed = [c.name for c in self.checks if not c.ok]
        text = f"{len(self.checks)} checks passed" if not failed else "failed: " + ", ".join(failed)
        return display.Figure(f"set-up ({self.target})", text, not failed)

    def raise_for_failure(self) -> None:
        """Raise ConfigError listing the failed checks."""
        failed = [f"{c.name}: {c.detail}" for c in self.checks if not c.ok]
        if failed:
            raise ConfigError("set-up failed: " + "; ".join(failed))


def _ok(ok: bool) -> display.Html:
    return display.Html(display.badge(ok, "ok" if ok else "failed"))


class DeploymentTarget(Closing):
    """Creates, updates, inspects and deletes the deployments of one environment.

    A target is built from the project settings and one environment; ``mlops_kit.targets.get``
    finds implementations by name. The public methods check their input and raise only
    :class:`~mlops_kit.errors.ToolkitError` subclasses: a backend's own exception reaches the
    caller as a :class:`~mlops_kit.errors.TargetError` naming the target and the operation,
    with the original as its ``__cause__``.
    """

    name: ClassVar[str]
    """The name the target is registered under, as written in ``EnvironmentSettings.target``."""
    capabilities: ClassVar[Capabilities] = Capabilities()
    """What of a spec the target honours; :meth:`problems` checks a spec against it."""

    def __init__(self, settings: Settings, environment: EnvironmentSettings) -> None:
        self.settings = settings
        self.environment = environment

    # -- the public contract: checks and error wrapping, then the implementation ----------

    def apply(self, spec: DeploymentSpec, *, timeout: float | None = None) -> DeploymentStatus:
        """Create the deployment ``spec`` describes, or update it to ``spec``; see :meth:`_apply`.

        Raises :class:`~mlops_kit.errors.UnsupportedSpec` (nothing changed) when the spec
        belongs to another environment or asks for what this target cannot honour.
        """
        problems = self.problems(spec)
        if problems:
            raise UnsupportedSpec(self.name, spec.key, problems)
        with self._backend(f"apply {spec.key} v{spec.version}"):
            return self._apply(spec, timeout=timeout)

    def delete(self, model_name: str) -> None:
        """Stop serving ``model_name`` and release its resources; see :meth:`_delete`."""
        with self._backend(f"delete {self.environment.name}/{model_name}"):
            self._delete(model_name)

    def status(self, model_name: str) -> DeploymentStatus | None:
        """The deployment's observed state, or None if it is not deployed; see :meth:`_status`."""
        with self._backend(f"status of {self.environment.name}/{model_name}"):
            return self._status(model_name)

    def list(self) -> list[DeploymentStatus]:
        """The status of every deployment in this target's environment; see :meth:`_list`."""
        with self._backend(f"list {self.environment.name}"):
            return self._list()

    def endpoint(self, model_name: str) -> str:
        """Base URL of the inference endpoint of ``model_name``; see :meth:`_endpoint`."""
        with self._backend(f"endpoint of {self.environment.name}/{model_name}"):
            return self._endpoint(model_name)

    @contextlib.contextmanager
    def preview(self, spec: DeploymentSpec) -> Iterator[DeploymentStatus | None]:
        """Serve ``spec``'s version beside what the environment serves, on a private endpoint.

        Yields the candidate's status (its ``endpoint`` answers no client of the environment)
        for smoke tests and hooks before the candidate takes traffic, and removes it on exit.
        Yields None where the target cannot (``capabilities.preview`` is False, or nothing is
        deployed yet): the caller then verifies after the rollout.
        """
        problems = self.problems(spec)
        if problems:
            raise UnsupportedSpec(self.name, spec.key, problems)
        if not self.capabilities.preview:
            yield None
            return
        with self._backend(f"preview {spec.key} v{spec.version}"):
            manager = self._preview(spec)
            status = manager.__enter__()
        try:
            yield status
        except BaseException as exc:
            with self._backend(f"end preview of {spec.key}"):
                manager.__exit__(type(exc), exc, exc.__traceback__)
            raise
        else:
            with self._backend(f"end preview of {spec.key}"):
                manager.__exit__(None, None, None)

    def _preview(
        self, spec: DeploymentSpec
    ) -> contextlib.AbstractContextManager[DeploymentStatus | None]:
        """Targets with ``capabilities.preview`` serve the candidate privately here."""
        return contextlib.nullcontext(None)

    def problems(self, spec: DeploymentSpec) -> builtins.list[str]:
        """Why this target cannot apply ``spec`` as written (empty when it can)."""
        caps = self.capabilities
        found = []
        if spec.environment != self.environment.name:
            found.append(
                f"{spec.key} belongs to environment {spec.environment!r}; this target serves "
                f"{self.environment.name!r}"
            )
        if spec.flavour not in caps.flavours:
            found.append(
                f"flavour {spec.flavour!r} is not served by the {self.name} target "
                f"(it serves {', '.join(sorted(caps.flavours))})"
            )
        if caps.max_replicas is not None and spec.replicas > caps.max_replicas:
            found.append(
                f"replicas={spec.replicas}: the {self.name} target runs at most "
                f"{caps.max_replicas} per deployment"
            )
        if spec.replicas < caps.min_replicas:
            found.append(
                f"replicas={spec.replicas}: the {self.name} target runs at least "
                f"{caps.min_replicas} per deployment"
            )
        if spec.candidate is not None and spec.candidate.sticky_header and not caps.sticky_routing:
            found.append(
                f"sticky_header={spec.candidate.sticky_header!r}: the {self.name} target splits "
                "a canary at random per request and cannot pin a caller to one version"
            )
        if spec.traffic < 100 and not caps.traffic_split:
            found.append(
                f"traffic={spec.traffic}: the {self.name} target cannot split an environment's "
                "traffic between versions here"
            )
        return found

    # -- what implementations write --------------------------------------------------------

    @abc.abstractmethod
    def _apply(self, spec: DeploymentSpec, *, timeout: float | None) -> DeploymentStatus:
        """Create or update the deployment to ``spec`` (already checked) and wait until ready.

        Blocks until the spec's version is ready and answering, then returns its status.
        Updating a live deployment must not drop requests: the old version answers until the
        new one does. Applying a spec that is already served changes nothing and returns
        quickly. ``timeout`` defaults to ``settings.serving.ready_timeout``; when it passes,
        raises :class:`~mlops_kit.errors.DeploymentTimeout`; other failures raise
        :class:`~mlops_kit.errors.TargetError` with the backend's explanation (e.g. the last
        lines of a server log).
        """

    @abc.abstractmethod
    def _delete(self, model_name: str) -> None:
        """Stop serving ``model_name``; idempotent: deleting what does not exist is no error."""

    @abc.abstractmethod
    def _status(self, model_name: str) -> DeploymentStatus | None:
        """The deployment's observed state, or None if it is not deployed.

        Reports drift honestly: a recorded deployment whose server has died is returned with
        ``ready=False`` and a ``detail`` saying so, never as ready from stale records.
        """

    @abc.abstractmethod
    def _list(self) -> builtins.list[DeploymentStatus]:
        """The status of every deployment in this target's environment, by name."""

    @abc.abstractmethod
    def _endpoint(self, model_name: str) -> str:
        """Base URL of the endpoint of ``model_name``, in the protocol its status names.

        For example ``http://127.0.0.1:PORT/v2/models/NAME`` (V2: append ``/infer``).
        Raises :class:`~mlops_kit.errors.TargetError` if the model is not deployed.
        """

    # -- set-up, per target (notebook 01) ---------------------------------------------------

    @classmethod
    def setup(  # noqa: B027 - optional hook: most targets need nothing beyond the state dir
        cls,
        project: Project,
        environments: builtins.list[EnvironmentSettings],
        report: SetupReport,
        **options: Any,
    ) -> None:
        """Create and check what ``environments`` need on this target, adding to ``report``.

        Idempotent. ``options`` are the target's own set-up options (e.g. ``apply_argocd``);
        a target refuses options it does not know with :class:`~mlops_kit.errors.ConfigError`.
        """
        if options:
            raise ConfigError(
                f"the {cls.name} target has no set-up options ({', '.join(sorted(options))})"
            )

    @classmethod
    def teardown(
        cls, project: Project, environments: builtins.list[EnvironmentSettings]
    ) -> builtins.list[str]:
        """Remove what this target runs for ``environments``; returns what was removed.

        The seed pipelines' clean-up stage; idempotent. By default there is nothing to remove
        (on Kubernetes, Argo CD prunes what the GitOps repository no longer lists).
        """
        return []

    @classmethod
    def describe(cls, settings: Settings, environment: EnvironmentSettings) -> dict[str, Any]:
        """Target-specific columns of an environment's row in the set-up report."""
        return {}

    # -- resources --------------------------------------------------------------------------

    def close(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release client resources held by this object; deployments keep running."""

    @contextlib.contextmanager
    def _backend(self, operation: str) -> Iterator[None]:
        """Let toolkit errors through; turn anything else into a TargetError naming the call."""
        try:
            yield
        except ToolkitError:
            raise
        except Exception as exc:
            raise TargetError(
                f"{self.name} target: {operation} failed: {type(exc).__name__}: {exc}"
            ) from exc

"""The deployment target interface: what every target (local, Kubernetes, SageMaker) promises.

The docstrings of :class:`DeploymentTarget` are the contract, in the manner of MLflow's
``BaseDeploymentClient``: implementations block until a deployment is ready, delete
idempotently, report drift honestly and raise only :class:`~mlops_kit.errors.TargetError`
(or its subclasses) for failures of the backend.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Self

if TYPE_CHECKING:
    from types import TracebackType

    from mlops_kit.deployment import DeploymentSpec
    from mlops_kit.settings import EnvironmentSettings, Settings


@dataclass(frozen=True)
class DeploymentStatus:
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
    """Base URL of the V2 inference endpoint, e.g. ``http://127.0.0.1:8080/v2/models/wine``."""
    detail: str = ""
    """Why it is not ready, or other human-readable context."""
    pid: int | None = None
    """Server process id, for targets that run local processes."""


class DeploymentTarget(abc.ABC):
    """Creates, updates, inspects and deletes the deployments of one environment.

    A target is built from the project settings and one environment; ``mlops_kit.targets.get``
    finds implementations by name. Failures of the backend are raised as
    :class:`~mlops_kit.errors.TargetError` (a :class:`~mlops_kit.errors.DeploymentTimeout` when
    a deployment does not become ready in time); nothing else escapes on purpose.
    """

    name: ClassVar[str]
    """The name the target is registered under, as written in ``EnvironmentSettings.target``."""

    def __init__(self, settings: Settings, environment: EnvironmentSettings) -> None:
        self.settings = settings
        self.environment = environment

    @abc.abstractmethod
    def apply(self, spec: DeploymentSpec, *, timeout: float | None = None) -> DeploymentStatus:
        """Create the deployment described by ``spec``, or update it to ``spec``.

        Blocks until the spec's version is ready and answering, then returns its status.
        Updating a live deployment must not drop requests: the old version answers until the
        new one does. Applying a spec that is already served changes nothing and returns
        quickly. ``timeout`` defaults to ``settings.serving.ready_timeout``; when it passes,
        raises :class:`~mlops_kit.errors.DeploymentTimeout`; other failures raise
        :class:`~mlops_kit.errors.TargetError` with the backend's explanation (e.g. the last
        lines of a server log).
        """

    @abc.abstractmethod
    def delete(self, model_name: str) -> None:
        """Stop serving ``model_name`` and release its resources.

        Idempotent: deleting a deployment that does not exist is not an error.
        """

    @abc.abstractmethod
    def status(self, model_name: str) -> DeploymentStatus | None:
        """The deployment's observed state, or None if it is not deployed.

        Reports drift honestly: a recorded deployment whose server has died is returned with
        ``ready=False`` and a ``detail`` saying so, never as ready from stale records.
        """

    @abc.abstractmethod
    def list(self) -> list[DeploymentStatus]:
        """The status of every deployment in this target's environment."""

    @abc.abstractmethod
    def endpoint(self, model_name: str) -> str:
        """Base URL of the V2 inference endpoint of ``model_name``.

        For example ``http://127.0.0.1:PORT/v2/models/NAME``; append ``/infer`` to predict.
        Raises :class:`~mlops_kit.errors.TargetError` if the model is not deployed.
        """

    def close(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release client resources held by this object; deployments keep running."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

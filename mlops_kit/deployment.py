"""The portable description of one deployment, rendered later for each target."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Flavour = Literal["mlflow", "sklearn", "custom", "embedded"]


class Resources(BaseModel):
    """Container resources, in Kubernetes quantity notation."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cpu_request: str = "100m"
    memory_request: str = "512Mi"
    cpu_limit: str | None = "1"
    memory_limit: str | None = "1Gi"


class Candidate(BaseModel):
    """A second version served beside the stable one while a progressive rollout runs.

    The stable version (the spec's own ``version``) receives ``100 - weight`` percent of live
    traffic and the candidate ``weight`` percent. With ``mirror`` the candidate takes no live
    traffic at all: it receives a copy of ``mirror_percent`` percent of the requests and its
    answers are discarded (a shadow). Targets render it their own way: a routing model on the
    local target, predictors' ``traffic`` / an ``Experiment`` on Seldon, production variants'
    weights on SageMaker.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str
    """Registered model version of the candidate."""
    model_uri: str
    """Where the candidate's model artifacts are."""
    run_id: str | None = None
    """The MLflow run that produced the candidate."""
    weight: int = Field(default=0, ge=0, le=100)
    """Percent of live traffic the candidate answers (0 while shadowing or after an abort)."""
    mirror: bool = False
    """Shadow: copy requests to the candidate and discard its answers."""
    mirror_percent: int = Field(default=100, ge=0, le=100)
    """Percent of requests copied to a shadow candidate."""
    sticky_header: str | None = None
    """Request header whose value pins a caller to one version (same value, same version)."""


class DeploymentSpec(BaseModel):
    """One model version deployed into one environment.

    Everything a target needs and nothing target-specific: the local target, the Kubernetes
    target and the SageMaker target each render it their own way, and the GitOps repository
    stores it (as a Kubernetes manifest) so any target can read it back.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    environment: str
    """Environment name, e.g. ``staging``."""
    model_name: str
    """Registered model name; also the deployment's name."""
    version: str
    """Registered model version, as the registry spells it (``"3"``)."""
    model_uri: str
    """Where the model artifacts are: a local path, ``file://``, ``s3://`` or ``gs://`` URI."""
    storage_secret: str | None = None
    """Kubernetes Secret with the credentials a cluster reads a remote ``model_uri`` with."""
    flavour: Flavour = "mlflow"
    """Server flavour: prepackaged MLflow / scikit-learn runtime, custom or embedded server."""
    run_id: str | None = None
    """The MLflow run that produced the model."""
    replicas: int = Field(default=1, ge=0, le=100)
    """Serving replicas (the local target serves one process per deployment)."""
    resources: Resources = Field(default_factory=Resources)
    """Container resources on clusters."""
    traffic: int = Field(default=100, ge=0, le=100)
    """Share of the environment's traffic this version receives."""
    image: str | None = None
    """Server image, for the custom and embedded flavours."""
    custom_class: str | None = None
    """``module:Class`` of a user's model class, for the custom flavour."""
    candidate: Candidate | None = None
    """A second version beside this one during a canary, shadow or blue/green rollout."""

    @property
    def key(self) -> str:
        """``<environment>/<model_name>``: where it lives in the GitOps repo."""
        return f"{self.environment}/{self.model_name}"

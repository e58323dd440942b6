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

    @property
    def key(self) -> str:
        """``<environment>/<model_name>``: where it lives in the GitOps repo."""
        return f"{self.environment}/{self.model_name}"

"""The ``sagemaker:`` settings section: where the SageMaker target trains, stores and serves.

A section of :class:`mlops_kit.settings.Settings` (variables ``MLOPS_KIT_SAGEMAKER__*``), kept
in its own module so the settings module stays one screenful per concern. Credentials are never
settings: boto3 reads them from the standard AWS configuration (``AWS_PROFILE``, the instance
role, ``AWS_ENDPOINT_URL`` for an emulator).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from mlops_kit.display import fields

_ARN = r"^arn:aws[a-z-]*:"


class SageMakerSettings(BaseModel):
    """How the SageMaker target reaches SageMaker, S3 and the serving image."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    region: str | None = None
    """AWS region; None: the standard AWS configuration's (``AWS_REGION``, profile)."""
    role_arn: str = Field(
        default="arn:aws:iam::123456789012:role/mlops-kit-sagemaker", pattern=_ARN
    )
    """Execution role SageMaker assumes to read the data and model artifacts from S3."""
    image_uri: str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/mlops-kit-byo:latest"
    """The BYO container image (ECR) that trains (``train``) and serves (``serve``)."""
    bucket: str = Field(default="mlops-kit-sagemaker", min_length=3, max_length=63)
    """S3 bucket for training data, training output and model archives (created by set-up)."""
    prefix: str = "mlops-kit"
    """Key prefix inside the bucket, e.g. ``<prefix>/<model>/data/``."""
    instance_type: str = "ml.m5.large"
    """Instance type of the endpoints' production variants."""
    instance_count: int = Field(default=1, ge=1, le=100)
    """Instances per endpoint when the deployment asks for no replicas of its own."""
    training_instance_type: str = "ml.m5.large"
    """Instance type of training jobs."""
    traffic_shifting: str = Field(default="ALL_AT_ONCE", pattern="^(ALL_AT_ONCE|CANARY|LINEAR)$")
    """Blue/green traffic shifting of an endpoint update: ALL_AT_ONCE, CANARY or LINEAR."""
    wait_interval: int = Field(default=0, ge=0, le=3600)
    """Seconds the blue fleet keeps serving after traffic moved (the rollback window)."""
    alarm_names: list[str] = Field(default_factory=list)
    """CloudWatch alarms that roll an endpoint update back (AutoRollbackConfiguration)."""
    ready_timeout: float = Field(default=1800.0, gt=0)
    """Seconds to wait for an endpoint to be InService (creation or update)."""
    training_timeout: float = Field(default=3600.0, gt=0)
    """Seconds to wait for a training job; it is stopped when they pass."""
    max_runtime: int = Field(default=3600, ge=60)
    """Training jobs' StoppingCondition.MaxRuntimeInSeconds."""
    poll_interval: float = Field(default=5.0, gt=0, le=300)
    """Seconds between two looks at a training job or an endpoint."""

    def _repr_html_(self) -> str:
        return fields(self.model_dump())

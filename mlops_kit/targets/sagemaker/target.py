"""SageMakerTarget: each model of an environment served by a SageMaker endpoint.

The endpoint is ``<model>-<environment>`` (see :mod:`.names`); each version is a SageMaker
Model (the BYO image ``sagemaker.image_uri`` and the version's ``model.tar.gz`` in S3) and an
EndpointConfig, swapped in blue/green by :class:`~.endpoints.Endpoints`. Everything created
is tagged ``mlops-kit:project``, ``mlops-kit:environment`` and ``mlops-kit:model``, which is
how this target lists its deployments and :func:`teardown` finds what to delete.
"""

from __future__ import annotations

import builtins
import time
from dataclasses import replace
from functools import cached_property
from typing import TYPE_CHECKING, Any

from mlops_kit.errors import TargetError
from mlops_kit.targets.base import Capabilities, Check, DeploymentStatus, DeploymentTarget
from mlops_kit.targets.sagemaker import names, variants
from mlops_kit.targets.sagemaker.artifacts import model_data_url
from mlops_kit.targets.sagemaker.clients import client, ensure_bucket
from mlops_kit.targets.sagemaker.endpoints import Endpoints, Observed, Release
from mlops_kit.targets.sagemaker.model_packages import register_version

if TYPE_CHECKING:
    from mlops_kit.deployment import DeploymentSpec
    from mlops_kit.project import Project
    from mlops_kit.settings import EnvironmentSettings, Settings
    from mlops_kit.targets.base import SetupReport


class SageMakerTarget(DeploymentTarget):
    """Serves each model of an environment with a SageMaker endpoint, updated blue/green.

    A spec's candidate is a second production variant (or a shadow variant) of the endpoint;
    its weight moves in place (:mod:`.variants`).
    """

    name = "sagemaker"
    capabilities = Capabilities(
        flavours=frozenset({"mlflow", "sklearn"}),
        min_replicas=1,
        max_replicas=100,
        traffic_split=False,
    )

    def __init__(self, settings: Settings, environment: EnvironmentSettings) -> None:
        super().__init__(settings, environment)
        self.config = settings.sagemaker

    @cached_property
    def endpoints(self) -> Endpoints:
        """The endpoint operations, on a SageMaker client made when first needed."""
        return Endpoints(client(self.config, "sagemaker"), self.config)

    @cached_property
    def s3(self) -> Any:
        """An S3 client for the model archives."""
        return client(self.config, "s3")

    # -- the DeploymentTarget contract -------------------------------------------------------

    def _apply(self, spec: DeploymentSpec, *, timeout: float | None) -> DeploymentStatus:
        """Create or update ``<model>-<env>`` to serve ``spec``; block until InService."""
        began = time.monotonic()
        deadline = began + (timeout or self.config.ready_timeout)
        data_url = model_data_url(self.s3, self.config, spec.model_name, spec.model_uri)
        image = spec.image or self.config.image_uri
        register_version(
            self.endpoints.sm,
            self.config,
            project=self.settings.project,
            model_name=spec.model_name,
            version=spec.version,
            model_data_url=data_url,
            image=image,
        )
        tags = self._tags(spec.model_name)
        if spec.run_id:
            tags[names.RUN_ID_TAG] = spec.run_id
        release = Release.plan(
            self.config,
            self.endpoint_name(spec.model_name),
            spec.version,
            image=image,
            model_data_url=data_url,
            instance_count=spec.replicas,
            tags=tags,
        )
        if spec.candidate is None:
            observed = self.endpoints.deploy(release, deadline)
        else:
            observed = variants.deploy(self.endpoints, self._pair(spec, release, image), deadline)
        took = time.monotonic() - began
        return replace(
            self._status_of(spec.model_name, observed), detail=f"InService in {took:.1f} s"
        )

    def _delete(self, model_name: str) -> None:
        """Delete the endpoint, then its EndpointConfigs and Models; idempotent."""
        endpoint = self.endpoint_name(model_name)
        self.endpoints.delete(endpoint, time.monotonic() + self.config.ready_timeout)
        self.endpoints.prune(endpoint, keep=None)

    def _status(self, model_name: str) -> DeploymentStatus | None:
        """What DescribeEndpoint says now; None when there is no endpoint."""
        observed = self.endpoints.observe(self.endpoint_name(model_name))
        return None if observed is None else self._status_of(model_name, observed)

    def _list(self) -> builtins.list[DeploymentStatus]:
        """Every endpoint of this project and environment the toolkit created, by model."""
        tags = {
            names.PROJECT_TAG: self.settings.project,
            names.ENVIRONMENT_TAG: self.environment.name,
        }
        found = []
        for endpoint in self.endpoints.managed(tags):
            arn = self.endpoints.describe(endpoint)
            if arn is None:
                continue
            model = self.endpoints.tags(arn["EndpointArn"]).get(names.MODEL_TAG)
            observed = self.endpoints.observe(endpoint)
            if model and observed is not None:
                found.append(self._status_of(model, observed))
        return sorted(found, key=lambda s: s.model_name)

    def _endpoint(self, model_name: str) -> str:
        """The endpoint's runtime URL: ``<runtime>/endpoints/<name>/invocations``.

        Requests to it must be signed (SigV4): :mod:`mlops_kit.verify.smoke` sends them
        through boto3's ``sagemaker-runtime`` client.
        """
        endpoint = self.endpoint_name(model_name)
        if self.endpoints.describe(endpoint) is None:
            raise TargetError(
                f"model {model_name!r} is not deployed in environment {self.environment.name!r} "
                f"(no SageMaker endpoint {endpoint})"
            )
        return self.invocations_url(endpoint)

    @classmethod
    def teardown(cls, project: Project, environments: list[EnvironmentSettings]) -> list[str]:
        """Delete the environments' endpoints, EndpointConfigs and Models (see :func:`teardown`)."""
        return [name for env in environments for name in teardown(project.settings, env.name)]

    @classmethod
    def setup(
        cls,
        project: Project,
        environments: list[EnvironmentSettings],
        report: SetupReport,
        **options: Any,
    ) -> None:
        """The bucket exists (created if missing), SageMaker answers, the package group exists."""
        if options:
            super().setup(project, environments, report, **options)
        from mlops_kit.targets.sagemaker.model_packages import ensure_group

        settings = project.settings
        config = settings.sagemaker
        try:
            created = ensure_bucket(client(config, "s3"), config.bucket, config.region)
        except Exception as exc:
            report.checks.append(Check("S3 bucket", False, f"{config.bucket}: {exc}"))
            return
        state = "created" if created else "exists"
        report.checks.append(Check("S3 bucket", True, f"s3://{config.bucket} ({state})"))
        try:
            sm = client(config, "sagemaker")
            sm.list_endpoints(MaxResults=1)
            group = ensure_group(sm, settings.model_name, settings.project)
        except Exception as exc:
            report.checks.append(Check("SageMaker", False, str(exc)))
            return
        report.checks.append(
            Check("SageMaker", True, f"model package group {group}; role {config.role_arn}")
        )

    @classmethod
    def describe(cls, settings: Settings, environment: EnvironmentSettings) -> dict[str, Any]:
        """The environment's endpoint name and instance type."""
        return {
            "endpoint": names.endpoint_name(settings.model_name, environment.name),
            "instance_type": settings.sagemaker.instance_type,
        }

    def close(self) -> None:
        """Close the boto3 clients this target opened; endpoints keep running."""
        for name in ("endpoints", "s3"):
            made = self.__dict__.pop(name, None)
            sm = made.sm if isinstance(made, Endpoints) else made
            if sm is not None and hasattr(sm, "close"):
                sm.close()

    # -- SageMaker extras --------------------------------------------------------------------

    def endpoint_name(self, model_name: str) -> str:
        """The SageMaker endpoint of ``model_name`` in this environment."""
        return names.endpoint_name(model_name, self.environment.name)

    @cached_property
    def runtime_url(self) -> str:
        """Where ``sagemaker-runtime`` answers (``AWS_ENDPOINT_URL`` honoured)."""
        return str(client(self.config, "sagemaker-runtime").meta.endpoint_url).rstrip("/")

    def invocations_url(self, endpoint: str) -> str:
        """``<sagemaker-runtime endpoint URL>/endpoints/<endpoint>/invocations``."""
        return f"{self.runtime_url}/endpoints/{endpoint}/invocations"

    def _pair(self, spec: DeploymentSpec, stable: Release, image: str) -> variants.Pair:
        """The stable release and the candidate's, sharing one EndpointConfig."""
        candidate = spec.candidate
        assert candidate is not None
        tags = {**self._tags(spec.model_name), **({names.RUN_ID_TAG: candidate.run_id}
                                                 if candidate.run_id else {})}  # fmt: skip
        release = Release.plan(
            self.config,
            stable.endpoint,
            candidate.version,
            image=image,
            model_data_url=model_data_url(
                self.s3, self.config, spec.model_name, candidate.model_uri
            ),  # fmt: skip
            instance_count=spec.replicas,
            tags=tags,
        )
        return variants.Pair.plan(self.config, stable, release, candidate)

    def _tags(self, model_name: str) -> dict[str, str]:
        return {
            names.PROJECT_TAG: self.settings.project,
            names.ENVIRONMENT_TAG: self.environment.name,
            names.MODEL_TAG: model_name,
        }

    def _status_of(self, model_name: str, observed: Observed) -> DeploymentStatus:
        detail = f"endpoint {observed.endpoint} {observed.status}"
        if observed.pending_config:
            detail += f", updating to {observed.pending_config}"
        if observed.failure:
            detail += f": {observed.failure}"
        if observed.candidate is not None:
            shares = ", ".join(f"{v} at {w}%" for v, w in observed.weights.items())
            shadow = observed.candidate
            if shadow.mirror:
                shares += f", v{shadow.version} shadow at {shadow.mirror_percent}%"
            detail += f" ({shares})"
        return DeploymentStatus(
            environment=self.environment.name,
            model_name=model_name,
            version=observed.version if observed.serving else None,
            ready=observed.serving,
            endpoint=self.invocations_url(observed.endpoint),
            detail=detail,
            candidate=observed.candidate if observed.serving else None,
        )


def teardown(settings: Settings, environment: str | None = None) -> list[str]:
    """Delete the endpoints, EndpointConfigs and Models this project's toolkit created.

    Finds them by their ``mlops-kit:project`` tag (and ``mlops-kit:environment``, when given);
    idempotent. Returns the names deleted, endpoints first.
    """
    config = settings.sagemaker
    endpoints = Endpoints(client(config, "sagemaker"), config)
    tags = {names.PROJECT_TAG: settings.project}
    if environment is not None:
        tags[names.ENVIRONMENT_TAG] = environment
    deadline = time.monotonic() + config.ready_timeout
    deleted = [e for e in endpoints.managed(tags) if endpoints.delete(e, deadline)]
    for kind in ("endpoint_config", "model"):
        for name in endpoints.resources(kind, tags):
            if endpoints.delete_resource(kind, name):
                deleted.append(name)
    return deleted


__all__ = ["SageMakerTarget", "teardown"]

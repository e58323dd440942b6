"""SageMaker endpoints: one per (model, environment), one Model and EndpointConfig per version.

The endpoint ``<model>-<environment>`` is created from the first version's EndpointConfig;
a later version gets its own Model and EndpointConfig and reaches the endpoint through
``UpdateEndpoint`` with a blue/green ``DeploymentConfig``: SageMaker starts the new fleet,
shifts the traffic (``ALL_AT_ONCE`` by default, or ``CANARY`` / ``LINEAR``), keeps the old
fleet for ``wait_interval`` seconds and rolls back by itself when one of ``alarm_names``
fires. The old version answers until the new one does. Once an update is in service, the
Models and EndpointConfigs of versions no longer served are deleted.

Models and EndpointConfigs are immutable in SageMaker, so their names carry a digest of what
they hold: applying the same version with the same settings reuses them and changes nothing.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlops_kit.errors import DeploymentTimeout, TargetError, WaitTimeout
from mlops_kit.process import wait_until
from mlops_kit.targets.sagemaker import names, variants
from mlops_kit.targets.sagemaker.clients import not_found

if TYPE_CHECKING:
    from mlops_kit.deployment import Candidate
    from mlops_kit.settings_sagemaker import SageMakerSettings

logger = logging.getLogger(__name__)

ENDPOINT_TAG = names.TAG + "endpoint"
SETTLED = ("InService", "Failed", "OutOfService")
SERVING = ("InService", "Updating", "SystemUpdating", "RollingBack")

_STEP = {"CANARY": "CanarySize", "LINEAR": "LinearStepSize"}
_STEP_PERCENT = {"CANARY": 10, "LINEAR": 25}


@dataclass(frozen=True)
class Release:
    """One version of a model as SageMaker serves it: a Model and an EndpointConfig."""

    endpoint: str
    version: str
    model: str
    """SageMaker Model name."""
    config: str
    """EndpointConfig name."""
    image: str
    model_data_url: str
    instance_type: str
    instance_count: int
    tags: dict[str, str]
    """Tags of every resource of the release (project, environment, model, version)."""

    @classmethod
    def plan(
        cls,
        config: SageMakerSettings,
        endpoint: str,
        version: str,
        *,
        image: str,
        model_data_url: str,
        instance_count: int,
        tags: dict[str, str],
    ) -> Release:
        """The release of ``version`` on ``endpoint``, named after what it holds."""
        model = names.resource_name(
            endpoint, f"v{version}", names.digest(image, model_data_url, config.role_arn)
        )
        count = max(instance_count, config.instance_count)
        ec = names.resource_name(
            endpoint, f"v{version}", names.digest(model, config.instance_type, str(count))
        )
        return cls(
            endpoint=endpoint,
            version=version,
            model=model,
            config=ec,
            image=image,
            model_data_url=model_data_url,
            instance_type=config.instance_type,
            instance_count=count,
            tags={**tags, ENDPOINT_TAG: endpoint, names.VERSION_TAG: version},
        )

    def production_variants(self) -> list[dict[str, Any]]:
        """The EndpointConfig's single variant: all traffic to this version."""
        return [
            {
                "VariantName": names.variant_name(self.version),
                "ModelName": self.model,
                "InitialInstanceCount": self.instance_count,
                "InstanceType": self.instance_type,
                "InitialVariantWeight": 1.0,
            }
        ]


@dataclass(frozen=True)
class Observed:
    """What DescribeEndpoint says, with the version its EndpointConfig is tagged with."""

    endpoint: str
    status: str
    config: str
    version: str | None
    failure: str = ""
    pending_config: str | None = None
    weights: dict[str, int] = field(default_factory=dict)
    """Each production variant's current share of the traffic, in percent."""
    candidate: Candidate | None = None
    """The candidate served beside ``version`` (see :mod:`.variants`), if any."""

    @property
    def serving(self) -> bool:
        """True while the endpoint answers (also during an update)."""
        return self.status in SERVING


class Endpoints:
    """Creates, updates, waits for, inspects and deletes endpoints through one client."""

    def __init__(self, sm: Any, config: SageMakerSettings) -> None:
        self.sm = sm
        self.config = config

    # -- reading -----------------------------------------------------------------------------

    def describe(self, endpoint: str) -> dict[str, Any] | None:
        """DescribeEndpoint, or None when there is no such endpoint."""
        try:
            return dict(self.sm.describe_endpoint(EndpointName=endpoint))
        except Exception as exc:
            if not_found(exc):
                return None
            raise

    def tags(self, arn: str) -> dict[str, str]:
        """The tags of a resource, or an empty mapping when it is gone."""
        try:
            return names.tag_dict(self.sm.list_tags(ResourceArn=arn).get("Tags"))
        except Exception as exc:
            if not_found(exc):
                return {}
            raise

    def observe(self, endpoint: str) -> Observed | None:
        """The endpoint's state and the version it serves; None when it does not exist."""
        found = self.describe(endpoint)
        if found is None:
            return None
        config = found.get("EndpointConfigName", "")
        pending = (found.get("PendingDeploymentSummary") or {}).get("EndpointConfigName")
        version, candidate = self._config_of(config, found)
        return Observed(
            endpoint=endpoint,
            status=found.get("EndpointStatus", "Unknown"),
            config=config,
            version=version,
            failure=found.get("FailureReason") or "",
            pending_config=pending,
            weights=variants.weights_of(found),
            candidate=candidate,
        )

    def _config_of(
        self, config: str, endpoint: dict[str, Any]
    ) -> tuple[str | None, Candidate | None]:
        """The version an EndpointConfig is tagged with, and the candidate beside it."""
        try:
            described = self.sm.describe_endpoint_config(EndpointConfigName=config)
        except Exception as exc:
            if not_found(exc):
                return None, None
            raise
        tags = self.tags(described["EndpointConfigArn"])
        return tags.get(names.VERSION_TAG), variants.candidate_of(endpoint, described, tags)

    def managed(self, tags: dict[str, str]) -> list[str]:
        """Names of the endpoints whose tags include every one of ``tags``, sorted."""
        found = []
        for summary in self._pages("list_endpoints", "Endpoints"):
            own = self.tags(summary["EndpointArn"])
            if all(own.get(k) == v for k, v in tags.items()):
                found.append(summary["EndpointName"])
        return sorted(found)

    # -- changing ----------------------------------------------------------------------------

    def deploy(self, release: Release, deadline: float) -> Observed:
        """Make ``release`` what its endpoint serves; block until it is InService.

        Creates the endpoint, or updates it blue/green, or changes nothing when it already
        serves the release. A Failed endpoint is deleted and created again.
        """
        self.ensure_model(release)
        self._ensure_config(release)
        current = self.observe(release.endpoint)
        if current is not None and current.status not in SETTLED:
            # An update or creation in flight: SageMaker refuses another until it settles.
            try:
                current = self.wait(release.endpoint, deadline, None)
            except DeploymentTimeout:
                raise
            except TargetError:  # it settled Failed: start again below
                current = self.observe(release.endpoint)
        if current is not None and current.status != "InService":
            logger.info("%s is %s: deleting it to start again", release.endpoint, current.status)
            self.delete(release.endpoint, deadline)
            current = None
        if current is None:
            logger.info("creating endpoint %s (v%s)", release.endpoint, release.version)
            self.sm.create_endpoint(
                EndpointName=release.endpoint,
                EndpointConfigName=release.config,
                Tags=names.tag_list(_without(release.tags, names.VERSION_TAG)),
            )
        elif current.config == release.config:
            return current
        else:
            logger.info(
                "updating endpoint %s from v%s to v%s (%s)",
                release.endpoint,
                current.version,
                release.version,
                self.config.traffic_shifting,
            )
            self.sm.update_endpoint(
                EndpointName=release.endpoint,
                EndpointConfigName=release.config,
                DeploymentConfig=self.deployment_config(),
            )
        observed = self.wait(release.endpoint, deadline, release.config)
        self.prune(release.endpoint, keep=observed.config)
        return observed

    def deployment_config(self) -> dict[str, Any]:
        """Blue/green traffic shifting, and auto-rollback on the configured alarms."""
        shifting = self.config.traffic_shifting
        routing: dict[str, Any] = {
            "Type": shifting,
            "WaitIntervalInSeconds": self.config.wait_interval,
        }
        if shifting in _STEP:
            routing[_STEP[shifting]] = {
                "Type": "CAPACITY_PERCENT",
                "Value": _STEP_PERCENT[shifting],
            }
        deployment: dict[str, Any] = {
            "BlueGreenUpdatePolicy": {
                "TrafficRoutingConfiguration": routing,
                "TerminationWaitInSeconds": self.config.wait_interval,
            }
        }
        if self.config.alarm_names:
            deployment["AutoRollbackConfiguration"] = {
                "Alarms": [{"AlarmName": name} for name in self.config.alarm_names]
            }
        return deployment

    def wait(self, endpoint: str, deadline: float, config: str | None) -> Observed:
        """Poll until the endpoint settles (with ``config`` in service, when given).

        Logs each status change with the time it took. Raises TargetError when the endpoint
        fails or SageMaker rolled the update back, DeploymentTimeout at the deadline.
        """
        began = time.monotonic()
        last: list[Observed | None] = [None]

        def settled() -> Observed | None:
            observed = self.observe(endpoint)
            if observed is None:
                raise TargetError(f"endpoint {endpoint} vanished while it was awaited")
            if last[0] is None or last[0].status != observed.status:
                logger.info(
                    "endpoint %s: %s (%.1f s)", endpoint, observed.status, time.monotonic() - began
                )
            last[0] = observed
            if observed.status not in SETTLED:
                return None
            if observed.status != "InService":
                raise TargetError(
                    f"endpoint {endpoint} is {observed.status}: "
                    f"{observed.failure or 'SageMaker gave no reason'}"
                )
            if config is not None and observed.config != config:
                raise TargetError(
                    f"endpoint {endpoint} is back on {observed.config} (v{observed.version}), "
                    f"not {config}: SageMaker rolled the update back"
                    + (f" ({observed.failure})" if observed.failure else "")
                )
            return observed

        try:
            observed = wait_until(
                settled,
                timeout=max(deadline - time.monotonic(), 0.0),
                interval=self.config.poll_interval,
                what=f"endpoint {endpoint} to be InService",
            )
        except WaitTimeout:
            state = last[0].status if last[0] else "unknown"
            raise DeploymentTimeout(
                f"endpoint {endpoint} was not InService in time (last status: {state}); see "
                f"`aws sagemaker describe-endpoint --endpoint-name {endpoint}`"
            ) from None
        assert observed is not None  # wait_until returns only a truthy value
        return observed

    def delete(self, endpoint: str, deadline: float) -> bool:
        """Delete the endpoint and wait until it is gone; False when there was none."""
        try:
            self.sm.delete_endpoint(EndpointName=endpoint)
        except Exception as exc:
            if not_found(exc):
                return False
            raise
        try:
            wait_until(
                lambda: self.describe(endpoint) is None,
                timeout=max(deadline - time.monotonic(), 0.0),
                interval=self.config.poll_interval,
                what=f"endpoint {endpoint} to be deleted",
            )
        except WaitTimeout:
            raise DeploymentTimeout(f"endpoint {endpoint} is still Deleting") from None
        return True

    def prune(self, endpoint: str, keep: str | None) -> list[str]:
        """Delete the endpoint's EndpointConfigs and Models other than ``keep``'s; their names."""
        kept_models: set[str] = set()
        if keep is not None:
            kept = self.sm.describe_endpoint_config(EndpointConfigName=keep)
            served = kept["ProductionVariants"] + (kept.get("ShadowProductionVariants") or [])
            kept_models = {variant["ModelName"] for variant in served}
        deleted = []
        for config in self.resources("endpoint_config", {ENDPOINT_TAG: endpoint}):
            if config != keep and self.delete_resource("endpoint_config", config):
                deleted.append(config)
        for model in self.resources("model", {ENDPOINT_TAG: endpoint}):
            if model not in kept_models and self.delete_resource("model", model):
                deleted.append(model)
        return deleted

    def resources(self, kind: str, tags: dict[str, str]) -> list[str]:
        """Names of the EndpointConfigs (``endpoint_config``) or Models (``model``) whose tags
        include every one of ``tags``."""
        method, key, name, arn = {
            "endpoint_config": (
                "list_endpoint_configs",
                "EndpointConfigs",
                "EndpointConfigName",
                "EndpointConfigArn",
            ),
            "model": ("list_models", "Models", "ModelName", "ModelArn"),
        }[kind]
        found = []
        for summary in self._pages(method, key):
            own = self.tags(summary[arn])
            if all(own.get(k) == v for k, v in tags.items()):
                found.append(summary[name])
        return sorted(found)

    def delete_resource(self, kind: str, name: str) -> bool:
        """Delete an EndpointConfig or Model; False when it was already gone."""
        call, key = {
            "endpoint_config": (self.sm.delete_endpoint_config, "EndpointConfigName"),
            "model": (self.sm.delete_model, "ModelName"),
        }[kind]
        try:
            call(**{key: name})
        except Exception as exc:
            if not_found(exc):
                return False
            raise
        return True

    def ensure_model(self, release: Release) -> None:
        """Create the release's SageMaker Model unless it exists (its name says what it holds)."""
        try:
            self.sm.describe_model(ModelName=release.model)
            return
        except Exception as exc:
            if not not_found(exc):
                raise
        self.sm.create_model(
            ModelName=release.model,
            ExecutionRoleArn=self.config.role_arn,
            PrimaryContainer={
                "Image": release.image,
                "ModelDataUrl": release.model_data_url,
                "Environment": {
                    "MLOPS_KIT_MODEL_NAME": release.tags.get(names.MODEL_TAG, ""),
                    "MLOPS_KIT_MODEL_VERSION": release.version,
                },
            },
            Tags=names.tag_list(release.tags),
        )

    def _ensure_config(self, release: Release) -> None:
        try:
            self.sm.describe_endpoint_config(EndpointConfigName=release.config)
            return
        except Exception as exc:
            if not not_found(exc):
                raise
        self.sm.create_endpoint_config(
            EndpointConfigName=release.config,
            ProductionVariants=release.production_variants(),
            Tags=names.tag_list(release.tags),
        )

    def _pages(self, method: str, key: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        token = None
        while True:
            page = getattr(self.sm, method)(**({"NextToken": token} if token else {}))
            items.extend(page.get(key) or [])
            token = page.get("NextToken")
            if not token:
                return items


def _without(tags: dict[str, str], key: str) -> dict[str, str]:
    return {k: v for k, v in tags.items() if k != key}


__all__ = ["ENDPOINT_TAG", "Endpoints", "Observed", "Release"]

"""A spec's candidate on SageMaker: a second production variant, or a shadow variant.

The stable version and the candidate share one EndpointConfig (:class:`Pair`): two production
variants ``v<stable>`` and ``v<candidate>`` whose weights split the live traffic, or, for a
shadow, the stable variant alone in production and the candidate in
``ShadowProductionVariants``, sampled at ``mirror_percent`` percent of the requests (its
weight relative to the production variant's 100); SageMaker discards the shadow's answers.
A canary is split at random per request: a ``sticky_header`` is refused (the target's
capabilities), not ignored.

A canary's steps move only the weights: the endpoint keeps its EndpointConfig and
``UpdateEndpointWeightsAndCapacities`` sets each variant's ``DesiredWeight`` in place, no
instance restarted. Adding or removing the candidate, or changing a shadow's sampling, is an
``UpdateEndpoint`` to another EndpointConfig. The candidate's identity (version, run id, model
URI) is in the pair config's tags, so a status says which candidate it serves
and at what weight, as :attr:`~mlops_kit.targets.base.DeploymentStatus.candidate`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlops_kit.deployment import Candidate
from mlops_kit.targets.sagemaker import names

if TYPE_CHECKING:
    from mlops_kit.settings_sagemaker import SageMakerSettings
    from mlops_kit.targets.sagemaker.endpoints import Endpoints, Observed, Release

logger = logging.getLogger(__name__)

CANDIDATE_TAG = names.TAG + "candidate-version"
CANDIDATE_RUN_TAG = names.TAG + "candidate-run-id"
CANDIDATE_URI_TAG = names.TAG + "candidate-model-uri"


@dataclass(frozen=True)
class Pair:
    """The stable release and the candidate's, served by one EndpointConfig."""

    stable: Release
    candidate: Release
    spec: Candidate
    config: str
    """EndpointConfig name: what both releases hold and how (live or shadow), not the weight."""

    @classmethod
    def plan(
        cls, config: SageMakerSettings, stable: Release, candidate: Release, spec: Candidate
    ) -> Pair:
        """The pair of ``stable`` and ``candidate`` releases as ``spec`` shares traffic."""
        how = f"shadow{spec.mirror_percent}" if spec.mirror else "live"
        name = names.resource_name(
            stable.endpoint,
            f"v{stable.version}-v{candidate.version}",
            names.digest(stable.config, candidate.config, how),
        )
        return cls(stable, candidate, spec, name)

    @property
    def tags(self) -> dict[str, str]:
        """The pair config's tags: the stable release's, and who the candidate is."""
        tags = {**self.stable.tags, CANDIDATE_TAG: self.spec.version,
                CANDIDATE_URI_TAG: self.spec.model_uri}  # fmt: skip
        if self.spec.run_id:
            tags[CANDIDATE_RUN_TAG] = self.spec.run_id
        return tags

    def weights(self) -> dict[str, int]:
        """Desired weight of each production variant, in percent."""
        if self.spec.mirror:
            return {names.variant_name(self.stable.version): 100}
        return {
            names.variant_name(self.stable.version): 100 - self.spec.weight,
            names.variant_name(self.candidate.version): self.spec.weight,
        }

    def endpoint_config(self) -> dict[str, Any]:
        """CreateEndpointConfig's arguments: the variants (and the shadow), their weights."""
        stable = self.stable.production_variants()[0]
        candidate = self.candidate.production_variants()[0]
        weights = self.weights()
        stable["InitialVariantWeight"] = float(weights[stable["VariantName"]])
        arguments: dict[str, Any] = {"EndpointConfigName": self.config}
        if self.spec.mirror:
            candidate["InitialVariantWeight"] = float(self.spec.mirror_percent)
            arguments["ProductionVariants"] = [stable]
            arguments["ShadowProductionVariants"] = [candidate]
        else:
            candidate["InitialVariantWeight"] = float(weights[candidate["VariantName"]])
            arguments["ProductionVariants"] = [stable, candidate]
        arguments["Tags"] = names.tag_list(self.tags)
        return arguments


def deploy(endpoints: Endpoints, pair: Pair, deadline: float) -> Observed:
    """Serve ``pair`` on its endpoint at its weights; block until InService.

    The endpoint's config changes only when the pair does (another candidate, shadow or live);
    weights then move in place with ``UpdateEndpointWeightsAndCapacities``.
    """
    sm = endpoints.sm
    for release in (pair.stable, pair.candidate):
        endpoints.ensure_model(release)
    try:
        sm.describe_endpoint_config(EndpointConfigName=pair.config)
    except Exception as exc:
        from mlops_kit.targets.sagemaker.clients import not_found

        if not not_found(exc):
            raise
        sm.create_endpoint_config(**pair.endpoint_config())
    current = endpoints.observe(pair.stable.endpoint)
    if current is not None and current.status not in ("InService", "Failed", "OutOfService"):
        current = endpoints.wait(pair.stable.endpoint, deadline, None)
    if current is None:
        logger.info("creating endpoint %s with a candidate", pair.stable.endpoint)
        sm.create_endpoint(EndpointName=pair.stable.endpoint, EndpointConfigName=pair.config,
                           Tags=names.tag_list(_endpoint_tags(pair)))  # fmt: skip
        current = endpoints.wait(pair.stable.endpoint, deadline, pair.config)
    elif current.config != pair.config:
        logger.info("endpoint %s: %s -> %s", pair.stable.endpoint, current.config, pair.config)
        sm.update_endpoint(EndpointName=pair.stable.endpoint, EndpointConfigName=pair.config)
        current = endpoints.wait(pair.stable.endpoint, deadline, pair.config)
    wanted = pair.weights()
    if not pair.spec.mirror and current.weights != wanted:
        logger.info("endpoint %s: weights %s -> %s", pair.stable.endpoint, current.weights, wanted)
        sm.update_endpoint_weights_and_capacities(
            EndpointName=pair.stable.endpoint,
            DesiredWeightsAndCapacities=[
                {"VariantName": name, "DesiredWeight": float(weight)}
                for name, weight in wanted.items()
            ],
        )
        current = endpoints.wait(pair.stable.endpoint, deadline, pair.config)
    endpoints.prune(pair.stable.endpoint, keep=pair.config)
    return current


def _endpoint_tags(pair: Pair) -> dict[str, str]:
    return {k: v for k, v in pair.stable.tags.items() if k != names.VERSION_TAG}


def weights_of(described: dict[str, Any]) -> dict[str, int]:
    """DescribeEndpoint's production variants' current weights, in percent of their sum."""
    current = {
        v["VariantName"]: float(v.get("CurrentWeight") or 0.0)
        for v in described.get("ProductionVariants") or []
    }
    total = sum(current.values())
    return {k: round(100 * w / total) if total else 0 for k, w in current.items()}


def candidate_of(
    described: dict[str, Any], config: dict[str, Any], tags: dict[str, str]
) -> Candidate | None:
    """The candidate a pair config serves (weights as DescribeEndpoint says them), if any."""
    version = tags.get(CANDIDATE_TAG)
    if version is None:
        return None
    variant = names.variant_name(version)
    shadows = [
        v for v in config.get("ShadowProductionVariants") or [] if v["VariantName"] == variant
    ]
    fields: dict[str, Any] = {
        "version": version,
        "model_uri": tags.get(CANDIDATE_URI_TAG, ""),
        "run_id": tags.get(CANDIDATE_RUN_TAG),
    }
    if shadows:
        fields.update(mirror=True, mirror_percent=round(shadows[0]["InitialVariantWeight"]))
    else:
        fields["weight"] = weights_of(described).get(variant, 0)
    return Candidate(**fields)

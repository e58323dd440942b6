"""A spec's candidate (a second version beside the stable one) in each document format.

:func:`~mlops_kit.gitops.manifests.render` calls :func:`add_candidate` and
:func:`~mlops_kit.gitops.manifests.spec_from_manifest` calls :func:`split_candidate`, so a
candidate travels through the GitOps repository like the rest of the spec:

* ``seldon-v1``: a second predictor named ``v<version>`` in the SeldonDeployment, the weights
  in the predictors' ``traffic`` (stable ``100 - weight``, candidate ``weight``); a shadow is a
  predictor with ``shadow: true`` (Seldon mirrors all requests to it and drops its answers).
  Each predictor carries the label ``version``, which Seldon's executor reports as
  ``predictor_version`` in its metrics: what the canary analysis selects a version by.
* ``seldon-v2``: the Model document of the stable version; the Kubernetes target renders the
  candidate's Model and the ``Experiment`` splitting (or mirroring) the traffic from it
  (:func:`candidate_objects`).
* ``sagemaker``: a second production variant with its ``initialVariantWeight``; a shadow is a
  ``shadowProductionVariants`` entry whose weight is the share of requests it gets a copy of.

The whole :class:`~mlops_kit.deployment.Candidate` is also kept in the
``mlops-kit.io/candidate`` annotation (every format); where a body says the weight or the
shadow, the body wins, as it is what the cluster or endpoint acts on.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from mlops_kit.deployment import DeploymentSpec
from mlops_kit.errors import ConfigError
from mlops_kit.gitops import manifests

CANDIDATE_ANNOTATION = manifests.CANDIDATE_ANNOTATION
CANARY_SUFFIX = "-canary"
"""A Seldon v2 candidate's Model is named ``<model>-canary``."""
ROLE_LABEL = "mlops-kit.io/role"


def candidate_spec(spec: DeploymentSpec) -> DeploymentSpec:
    """``spec`` as if its candidate were the stable version (same model, environment, sizes)."""
    candidate = spec.candidate
    if candidate is None:
        raise ConfigError(f"{spec.key} has no candidate")
    return spec.model_copy(
        update={
            "version": candidate.version,
            "model_uri": candidate.model_uri,
            "run_id": candidate.run_id,
            "traffic": 100,
            "candidate": None,
        }
    )


def add_candidate(doc: dict[str, Any], spec: DeploymentSpec, fmt: str) -> dict[str, Any]:
    """Render ``spec.candidate`` into ``doc`` (``spec`` rendered without it) in format ``fmt``."""
    candidate = spec.candidate
    if candidate is None:
        return doc
    if candidate.version == spec.version:
        raise ConfigError(f"{spec.key}: the candidate is the stable version {spec.version}")
    annotations = doc["metadata"].setdefault("annotations", {})
    annotations[manifests.TRAFFIC_ANNOTATION] = str(spec.traffic)
    twin = candidate_spec(spec)
    if fmt == "seldon-v1":
        predictors = doc["spec"]["predictors"]
        stable = predictors[0]
        extra = manifests.render(twin, "seldon-v1")["spec"]["predictors"][0]
        if candidate.mirror:
            stable["traffic"] = 100
            extra["traffic"] = 0
            extra["shadow"] = True
        else:
            stable["traffic"] = 100 - candidate.weight
            extra["traffic"] = candidate.weight
        predictors.append(extra)
    elif fmt == "sagemaker":
        body = doc["spec"]
        stable = body["productionVariants"][0]
        variant = manifests.render(twin, "sagemaker")["spec"]["productionVariants"][0]
        variant["modelDataUrl"] = candidate.model_uri
        if candidate.mirror:
            stable["initialVariantWeight"] = 100
            variant["initialVariantWeight"] = candidate.mirror_percent
            body["shadowProductionVariants"] = [variant]
        else:
            stable["initialVariantWeight"] = 100 - candidate.weight
            variant["initialVariantWeight"] = candidate.weight
            body["productionVariants"].append(variant)
    return doc


def split_candidate(
    kind: str | None, annotations: dict[str, Any], body: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The body with the candidate taken out (as the stable spec renders it), and the
    annotations with the candidate's weight and shadow as the body says them."""
    raw = annotations.get(CANDIDATE_ANNOTATION)
    if raw is None:
        return body, annotations
    data = json.loads(raw)
    body = copy.deepcopy(body)
    traffic = int(annotations.get(manifests.TRAFFIC_ANNOTATION, 100))
    if kind == "SeldonDeployment":
        name = manifests.predictor_name(str(data["version"]))
        predictors = body.get("predictors") or []
        found = [p for p in predictors if p.get("name") == name]
        if not found:
            raise ConfigError(f"the candidate's predictor {name!r} is missing")
        body["predictors"] = [p for p in predictors if p.get("name") != name]
        body["predictors"][0]["traffic"] = traffic
        shadow = bool(found[0].get("shadow", False))
        data["mirror"] = shadow
        data["weight"] = 0 if shadow else int(found[0].get("traffic", 0))
    elif kind == "SageMakerEndpoint":
        data.update(_split_variants(body, str(data["version"]), traffic))
    return body, {**annotations, CANDIDATE_ANNOTATION: json.dumps(data)}


def _split_variants(body: dict[str, Any], version: str, traffic: int) -> dict[str, Any]:
    from mlops_kit.targets.sagemaker.names import variant_name

    name = variant_name(version)
    variants = body.get("productionVariants") or []
    shadows = body.pop("shadowProductionVariants", None) or []
    live = [v for v in variants if v.get("variantName") == name]
    mirrored = [v for v in shadows if v.get("variantName") == name]
    if not live and not mirrored:
        raise ConfigError(f"the candidate's production variant {name!r} is missing")
    body["productionVariants"] = [v for v in variants if v.get("variantName") != name]
    body["productionVariants"][0]["initialVariantWeight"] = traffic
    if mirrored:
        return {"mirror": True, "weight": 0, "mirror_percent": mirrored[0]["initialVariantWeight"]}
    return {"mirror": False, "weight": int(live[0].get("initialVariantWeight", 0))}


def candidate_objects(
    spec: DeploymentSpec, namespace: str | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Seldon v2: the candidate's Model (``<model>-canary``) and the Experiment routing to it.

    The Experiment takes over the stable Model's endpoint (``default``) and splits it by the
    weights; a shadow gets all the live traffic on the stable Model and a ``mirror`` of
    ``mirror_percent`` percent to the candidate.
    """
    candidate = spec.candidate
    if candidate is None:
        raise ConfigError(f"{spec.key} has no candidate")
    name, canary_name = spec.model_name, spec.model_name + CANARY_SUFFIX
    model = manifests.render(candidate_spec(spec), "seldon-v2", namespace)
    model["metadata"]["name"] = canary_name
    model["metadata"]["labels"][ROLE_LABEL] = "canary"
    if candidate.mirror:
        experiment = manifests.render_experiment(name, [(name, 100)], default=name,
                                                 namespace=namespace)  # fmt: skip
        experiment["spec"]["mirror"] = {"name": canary_name, "percent": candidate.mirror_percent}
    else:
        experiment = manifests.render_experiment(
            name,
            [(name, 100 - candidate.weight), (canary_name, candidate.weight)],
            default=name,
            namespace=namespace,
        )
    return model, experiment

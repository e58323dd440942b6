"""Render a DeploymentSpec as the Kubernetes document a cluster would get, and read it back.

Two formats: Seldon Core v1 ``SeldonDeployment`` (``seldon-v1``) and Seldon Core v2 ``Model``
(``seldon-v2``); environments deployed through the SageMaker target record a
``SageMakerEndpoint`` (``sagemaker``) instead: the endpoint, its Model and production variant.
Whatever the document body cannot say (run id, flavour, environment; on v2 also traffic, the
image and the full resources) travels in ``mlops-kit.io/*`` annotations,
so :func:`spec_from_manifest` rebuilds the exact spec: the GitOps repository stores only
these documents and every target reads its deployments back through this module.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal, get_args

import yaml
from pydantic import ValidationError

from mlops_kit.deployment import DeploymentSpec, Resources
from mlops_kit.errors import ConfigError

if TYPE_CHECKING:
    from mlops_kit.settings import Settings

ManifestFormat = Literal["seldon-v1", "seldon-v2"]
FORMATS: tuple[str, ...] = get_args(ManifestFormat)
DocumentFormat = Literal["seldon-v1", "seldon-v2", "sagemaker"]
"""What an environment's directory holds: a Seldon format, or SageMaker endpoint documents."""

SELDON_V1_API = "machinelearning.seldon.io/v1"
SELDON_V2_API = "mlops.seldon.io/v1alpha1"
SAGEMAKER_API = "mlops-kit.io/v1"

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "mlops-kit"
NAME_LABEL = "app.kubernetes.io/name"
ENVIRONMENT_LABEL = "mlops-kit.io/environment"

_A = "mlops-kit.io/"
VERSION_ANNOTATION = _A + "model-version"
RUN_ID_ANNOTATION = _A + "run-id"
ENVIRONMENT_ANNOTATION = _A + "environment"
FLAVOUR_ANNOTATION = _A + "flavour"
MODEL_URI_ANNOTATION = _A + "model-uri"
CUSTOM_CLASS_ANNOTATION = _A + "custom-class"
CANDIDATE_ANNOTATION = _A + "candidate"
"""A progressive rollout's candidate (JSON of :class:`~mlops_kit.deployment.Candidate`): every
format carries it here, whatever its body renders of it."""
# Seldon v2 Models have no traffic, image or cpu fields: those live in annotations there.
TRAFFIC_ANNOTATION = _A + "traffic"
IMAGE_ANNOTATION = _A + "image"
RESOURCES_ANNOTATION = _A + "resources"

# Names become Kubernetes object names and label values: DNS-1123 labels.
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")

_V1_IMPLEMENTATION = {"mlflow": "MLFLOW_SERVER", "sklearn": "SKLEARN_SERVER"}
# Seldon v2 schedules a Model onto a Server whose capabilities cover these; MLServer's
# default capabilities include all three ("python" is its custom-runtime capability).
_V2_REQUIREMENTS = {
    "mlflow": "mlflow",
    "sklearn": "sklearn",
    "custom": "python",
    "embedded": "python",
}


def render(
    spec: DeploymentSpec, fmt: DocumentFormat = "seldon-v1", namespace: str | None = None
) -> dict[str, Any]:
    """The document for ``spec`` in format ``fmt`` (``seldon-v1``, ``seldon-v2``, ``sagemaker``).

    ``namespace`` is left out when None, as GitOps tools (Argo CD) set it per Application.
    """
    _check_name("model name", spec.model_name)
    _check_name("environment", spec.environment)
    if fmt == "seldon-v1":
        doc = _render_v1(spec, namespace)
    elif fmt == "seldon-v2":
        doc = _render_v2(spec, namespace)
    elif fmt == "sagemaker":
        doc = _render_sagemaker(spec)
    else:
        known = ", ".join(get_args(DocumentFormat))
        raise ConfigError(f"unknown manifest format {fmt!r}; known: {known}")
    if spec.candidate is None:
        return doc
    from mlops_kit.gitops.candidates import add_candidate

    return add_candidate(doc, spec, fmt)


def format_for(settings: Settings, environment: str) -> DocumentFormat:
    """The document format of ``environment``: ``sagemaker`` for a SageMaker environment,
    else ``gitops.manifest``."""
    if settings.environment(environment).target == "sagemaker":
        return "sagemaker"
    return settings.gitops.manifest


def render_experiment(
    name: str,
    candidates: Sequence[tuple[str, int]],
    default: str | None = None,
    namespace: str | None = None,
) -> dict[str, Any]:
    """A Seldon v2 ``Experiment`` splitting traffic between Models, e.g. for a canary.

    ``candidates`` are ``(model resource name, weight)`` pairs; ``default`` (one of them) is
    the Model whose endpoint the experiment takes over.
    """
    _check_name("experiment name", name)
    names = [candidate for candidate, _ in candidates]
    if not candidates:
        raise ConfigError(f"experiment {name!r} needs at least one candidate")
    if len(set(names)) != len(names):
        raise ConfigError(f"experiment {name!r} lists a candidate twice: {names}")
    weights = [weight for _, weight in candidates]
    if any(not isinstance(w, int) or isinstance(w, bool) or w < 0 for w in weights):
        raise ConfigError(f"experiment {name!r}: weights must be non-negative integers: {weights}")
    if sum(weights) == 0:
        raise ConfigError(f"experiment {name!r}: weights must not all be zero")
    if default is not None and default not in names:
        raise ConfigError(f"experiment {name!r}: default {default!r} is not a candidate {names}")
    body: dict[str, Any] = {}
    if default is not None:
        body["default"] = default
    body["candidates"] = [{"name": n, "weight": w} for n, w in candidates]
    return {
        "apiVersion": SELDON_V2_API,
        "kind": "Experiment",
        "metadata": _metadata(name, namespace, {MANAGED_BY_LABEL: MANAGED_BY}, None),
        "spec": body,
    }


def render_storage_secret(
    name: str,
    fmt: ManifestFormat = "seldon-v1",
    namespace: str | None = None,
    *,
    region: str | None = None,
    endpoint: str | None = None,
) -> dict[str, Any]:
    """A template of the Secret Seldon reads ``s3://`` models with: rclone's remote ``s3``.

    v1's storage initializer takes it as environment (``RCLONE_CONFIG_S3_*``), v2 as an rclone
    remote definition. The keys are placeholders to fill in (or drop them and set ``env_auth``
    to use the pod's IAM role); apply it yourself: credentials never go into the GitOps repo.
    """
    _check_name("secret name", name)
    remote: dict[str, Any] = {
        "provider": "Other" if endpoint else "AWS",
        "env_auth": False,
        "access_key_id": "REPLACE-WITH-ACCESS-KEY-ID",
        "secret_access_key": "REPLACE-WITH-SECRET-ACCESS-KEY",
    }
    remote.update({k: v for k, v in (("region", region), ("endpoint", endpoint)) if v})
    if fmt == "seldon-v1":
        data = {"RCLONE_CONFIG_S3_TYPE": "s3"}
        data.update({f"RCLONE_CONFIG_S3_{k.upper()}": str(v).lower() if isinstance(v, bool)
                     else v for k, v in remote.items()})  # fmt: skip
    elif fmt == "seldon-v2":
        data = {"s3": json.dumps({"type": "s3", "name": "s3", "parameters": remote})}
    else:
        raise ConfigError(f"unknown manifest format {fmt!r}; known: {', '.join(FORMATS)}")
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _metadata(name, namespace, {MANAGED_BY_LABEL: MANAGED_BY}, None),
        "type": "Opaque",
        "stringData": data,
    }


def spec_from_manifest(doc: Any) -> DeploymentSpec:
    """Rebuild the DeploymentSpec a document was rendered from; ConfigError if it is not ours."""
    if not isinstance(doc, dict):
        raise ConfigError(f"a manifest must be a mapping, not {type(doc).__name__}")
    api, kind = doc.get("apiVersion"), doc.get("kind")
    if (api, kind) == (SELDON_V1_API, "SeldonDeployment"):
        read = _read_v1
    elif (api, kind) == (SELDON_V2_API, "Model"):
        read = _read_v2
    elif (api, kind) == (SAGEMAKER_API, "SageMakerEndpoint"):
        read = _read_sagemaker
    else:
        raise ConfigError(
            f"not a deployment manifest: apiVersion {api!r}, kind {kind!r} (expected "
            f"{SELDON_V1_API} SeldonDeployment, {SELDON_V2_API} Model or {SAGEMAKER_API} "
            "SageMakerEndpoint)"
        )
    meta = doc.get("metadata")
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str):
        raise ConfigError(f"{kind} has no metadata.name")
    where = f"{kind} {meta['name']!r}"
    labels = meta.get("labels") or {}
    if labels.get(MANAGED_BY_LABEL) != MANAGED_BY:
        raise ConfigError(f"{where} is not managed by mlops-kit (no {MANAGED_BY_LABEL} label)")
    annotations = meta.get("annotations") or {}
    for key in (VERSION_ANNOTATION, ENVIRONMENT_ANNOTATION, FLAVOUR_ANNOTATION):
        if not isinstance(annotations.get(key), str):
            raise ConfigError(f"{where} lacks the {key} annotation")
    spec = doc.get("spec")
    if not isinstance(spec, dict):
        raise ConfigError(f"{where} has no spec")
    from mlops_kit.gitops.candidates import split_candidate

    try:
        spec, annotations = split_candidate(kind, annotations, spec)
        fields = read(meta["name"], annotations, spec)
        base = {
            "environment": annotations[ENVIRONMENT_ANNOTATION],
            "model_name": meta["name"],
            "version": annotations[VERSION_ANNOTATION],
            "flavour": annotations[FLAVOUR_ANNOTATION],
            "run_id": annotations.get(RUN_ID_ANNOTATION),
            "custom_class": annotations.get(CUSTOM_CLASS_ANNOTATION),
        }
        if CANDIDATE_ANNOTATION in annotations:
            base["candidate"] = json.loads(annotations[CANDIDATE_ANNOTATION])
        return DeploymentSpec(**base, **fields)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"{where} does not describe a valid deployment: {problems}") from None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ConfigError(f"{where} is malformed: {type(exc).__name__}: {exc}") from None


def dump(doc: dict[str, Any]) -> str:
    """YAML text of a document, keys in the order rendered, so equal specs give equal text."""
    return yaml.safe_dump(doc, sort_keys=False, default_flow_style=False, width=4096)


def load(text: str) -> dict[str, Any]:
    """Parse one YAML document into a mapping; ConfigError if it is not one."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"manifest is not valid YAML: {exc}".replace("\n", " ")) from None
    if not isinstance(doc, dict):
        raise ConfigError(f"manifest must be a YAML mapping, not {type(doc).__name__}")
    return doc


def _check_name(what: str, value: str) -> None:
    if not _DNS_LABEL.fullmatch(value):
        raise ConfigError(
            f"{what} {value!r} is not a valid Kubernetes name (lowercase letters, digits and "
            "'-', starting and ending with a letter or digit, at most 63 characters)"
        )


def _metadata(
    name: str,
    namespace: str | None,
    labels: dict[str, str],
    annotations: dict[str, str] | None,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace is not None:
        meta["namespace"] = namespace
    meta["labels"] = labels
    if annotations:
        meta["annotations"] = annotations
    return meta


def _spec_metadata(
    spec: DeploymentSpec, namespace: str | None, extra: dict[str, str]
) -> dict[str, Any]:
    labels = {
        MANAGED_BY_LABEL: MANAGED_BY,
        NAME_LABEL: spec.model_name,
        ENVIRONMENT_LABEL: spec.environment,
    }
    annotations = {
        ENVIRONMENT_ANNOTATION: spec.environment,
        VERSION_ANNOTATION: spec.version,
        FLAVOUR_ANNOTATION: spec.flavour,
        MODEL_URI_ANNOTATION: spec.model_uri,
    }
    if spec.run_id is not None:
        annotations[RUN_ID_ANNOTATION] = spec.run_id
    if spec.custom_class is not None:
        annotations[CUSTOM_CLASS_ANNOTATION] = spec.custom_class
    if spec.candidate is not None:
        annotations[CANDIDATE_ANNOTATION] = json.dumps(spec.candidate.model_dump())
    annotations.update(extra)
    return _metadata(spec.model_name, namespace, labels, annotations)


def _render_v1(spec: DeploymentSpec, namespace: str | None) -> dict[str, Any]:
    node = spec.model_name
    graph: dict[str, Any] = {"name": node}
    if spec.flavour in _V1_IMPLEMENTATION:
        graph["implementation"] = _V1_IMPLEMENTATION[spec.flavour]
    else:
        graph["type"] = "MODEL"
    if spec.flavour != "embedded":
        # A custom reusable server gets the artifacts the same way a prepackaged one does:
        # Seldon's storage initializer downloads modelUri into the container.
        graph["modelUri"] = spec.model_uri
    if spec.storage_secret is not None:
        # The storage initializer's environment: RCLONE_CONFIG_S3_* (docs/artifacts.md).
        graph["envSecretRefName"] = spec.storage_secret
    graph["children"] = []
    # Seldon v1 sets a graph node's resources (and, for custom servers, its image) through
    # a componentSpecs container named like the node; for prepackaged servers it merges
    # this container into the server container it generates.
    container: dict[str, Any] = {"name": node}
    if spec.image is not None:
        container["image"] = spec.image
    container["resources"] = _k8s_resources(spec.resources)
    predictor = {
        "name": predictor_name(spec.version),
        # Seldon's executor reports it as predictor_version: the canary analysis' selector.
        "labels": {"version": spec.version},
        "replicas": spec.replicas,
        "traffic": spec.traffic,
        "graph": graph,
        "componentSpecs": [{"spec": {"containers": [container]}}],
    }
    return {
        "apiVersion": SELDON_V1_API,
        "kind": "SeldonDeployment",
        "metadata": _spec_metadata(spec, namespace, {}),
        "spec": {"protocol": "v2", "predictors": [predictor]},
    }


def _render_v2(spec: DeploymentSpec, namespace: str | None) -> dict[str, Any]:
    extra = {
        TRAFFIC_ANNOTATION: str(spec.traffic),
        RESOURCES_ANNOTATION: json.dumps(spec.resources.model_dump(), sort_keys=True),
    }
    if spec.image is not None:
        # v2 runs models on shared Servers; the image belongs to a Server, not a Model.
        extra[IMAGE_ANNOTATION] = spec.image
    body: dict[str, Any] = {"storageUri": spec.model_uri}
    if spec.storage_secret is not None:
        body["secretName"] = spec.storage_secret  # an rclone remote named "s3" (docs/artifacts.md)
    body["requirements"] = [_V2_REQUIREMENTS[spec.flavour]]
    body["replicas"] = spec.replicas
    body["memory"] = spec.resources.memory_request
    return {
        "apiVersion": SELDON_V2_API,
        "kind": "Model",
        "metadata": _spec_metadata(spec, namespace, extra),
        "spec": body,
    }


def _read_v1(name: str, annotations: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    predictors = body.get("predictors")
    if not isinstance(predictors, list) or len(predictors) != 1:
        raise ConfigError(f"SeldonDeployment {name!r} must have exactly one predictor")
    predictor = predictors[0]
    graph = predictor["graph"]
    containers = [
        c
        for component in predictor.get("componentSpecs") or []
        for c in ((component.get("spec") or {}).get("containers") or [])
        if c.get("name") == graph["name"]
    ]
    container = containers[0] if containers else {}
    resources = container.get("resources")
    uri = graph.get("modelUri", annotations.get(MODEL_URI_ANNOTATION))
    if uri is None:
        raise ConfigError(
            f"SeldonDeployment {name!r} has neither modelUri nor model-uri annotation"
        )
    fields: dict[str, Any] = {
        "model_uri": uri,
        "storage_secret": graph.get("envSecretRefName"),
        "replicas": predictor.get("replicas", 1),
        "traffic": predictor.get("traffic", 100),
        "image": container.get("image"),
    }
    if resources is not None:
        fields["resources"] = _spec_resources(resources)
    return fields


def _read_v2(name: str, annotations: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "model_uri": body["storageUri"],
        "storage_secret": body.get("secretName"),
        "replicas": body.get("replicas", 1),
        "image": annotations.get(IMAGE_ANNOTATION),
    }
    if TRAFFIC_ANNOTATION in annotations:
        fields["traffic"] = int(annotations[TRAFFIC_ANNOTATION])
    resources: dict[str, Any] = {}
    if RESOURCES_ANNOTATION in annotations:
        resources = json.loads(annotations[RESOURCES_ANNOTATION])
    if "memory" in body:
        # The body is what the cluster acts on, so it wins over the annotation.
        resources["memory_request"] = str(body["memory"])
    if resources:
        fields["resources"] = Resources(**resources)
    return fields


def _render_sagemaker(spec: DeploymentSpec) -> dict[str, Any]:
    # The endpoint's declarative config in SageMaker's own words; the names SageMaker
    # derives (endpoint, variant) are written for readers and recomputed when applied.
    from mlops_kit.targets.sagemaker.names import endpoint_name, variant_name

    extra = {RESOURCES_ANNOTATION: json.dumps(spec.resources.model_dump(), sort_keys=True)}
    model: dict[str, Any] = {"modelDataUrl": spec.model_uri}
    if spec.image is not None:
        model["image"] = spec.image
    return {
        "apiVersion": SAGEMAKER_API,
        "kind": "SageMakerEndpoint",
        "metadata": _spec_metadata(spec, None, extra),
        "spec": {
            "endpointName": endpoint_name(spec.model_name, spec.environment),
            "model": model,
            "productionVariants": [
                {
                    "variantName": variant_name(spec.version),
                    "initialInstanceCount": spec.replicas,
                    "initialVariantWeight": spec.traffic,
                }
            ],
        },
    }


def _read_sagemaker(name: str, annotations: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    variants = body.get("productionVariants")
    if not isinstance(variants, list) or len(variants) != 1:
        raise ConfigError(f"SageMakerEndpoint {name!r} must have exactly one production variant")
    model = body["model"]
    fields: dict[str, Any] = {
        "model_uri": model["modelDataUrl"],
        "image": model.get("image"),
        "replicas": variants[0].get("initialInstanceCount", 1),
        "traffic": variants[0].get("initialVariantWeight", 100),
    }
    if RESOURCES_ANNOTATION in annotations:
        fields["resources"] = Resources(**json.loads(annotations[RESOURCES_ANNOTATION]))
    return fields


def predictor_name(version: str) -> str:
    """A SeldonDeployment predictor's name: ``v<version>``."""
    return f"v{version}"


def _k8s_resources(res: Resources) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {
        "requests": {"cpu": res.cpu_request, "memory": res.memory_request}
    }
    limits = {
        k: v for k, v in (("cpu", res.cpu_limit), ("memory", res.memory_limit)) if v is not None
    }
    if limits:
        out["limits"] = limits
    return out


def _spec_resources(res: dict[str, Any]) -> Resources:
    requests = res.get("requests") or {}
    limits = res.get("limits") or {}
    fields: dict[str, Any] = {"cpu_limit": None, "memory_limit": None}
    for field, value in (
        ("cpu_request", requests.get("cpu")),
        ("memory_request", requests.get("memory")),
        ("cpu_limit", limits.get("cpu")),
        ("memory_limit", limits.get("memory")),
    ):
        if value is not None:
            fields[field] = str(value)
    return Resources(**fields)

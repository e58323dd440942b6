"""Rendered documents validate against the official Seldon CRD schemas and read back exactly."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest

from mlops_kit.deployment import DeploymentSpec
from mlops_kit.errors import ConfigError
from mlops_kit.gitops import manifests
from tests.support.crds import (
    CRDS,
    SCHEMAS_DIR,
    load_yaml,
    validate,
)
from tests.support.specs import SPECS


@pytest.fixture(scope="module")
def schemas_dir() -> Path:
    if not SCHEMAS_DIR.is_dir():
        pytest.fail(f"Seldon CRD schemas not found at {SCHEMAS_DIR} (vendored with the tests)")
    return SCHEMAS_DIR


FORMATS = ["seldon-v1", "seldon-v2"]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("flavour", list(SPECS))
def test_rendered_document_is_valid_for_the_crd(schemas_dir, flavour, fmt):
    validate(manifests.render(SPECS[flavour], fmt), schemas_dir)
    validate(manifests.render(SPECS[flavour], fmt, namespace="mlops-demo-staging"), schemas_dir)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("flavour", list(SPECS))
def test_round_trip_is_exact(flavour, fmt):
    spec = SPECS[flavour]
    doc = manifests.render(spec, fmt)
    assert manifests.spec_from_manifest(doc) == spec
    assert manifests.spec_from_manifest(manifests.load(manifests.dump(doc))) == spec


@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip_of_defaults_and_an_imageless_custom_server(fmt):
    plain = DeploymentSpec(environment="staging", model_name="m", version="1", model_uri="/m")
    custom = plain.model_copy(update={"flavour": "custom", "custom_class": "pkg.mod:Model"})
    for spec in (plain, custom):
        assert manifests.spec_from_manifest(manifests.render(spec, fmt)) == spec


def test_seldon_v1_document_shape():
    doc = manifests.render(SPECS["mlflow"], "seldon-v1", namespace="ns")
    assert doc["apiVersion"] == "machinelearning.seldon.io/v1"
    assert doc["kind"] == "SeldonDeployment"
    assert doc["metadata"]["name"] == "wine-classifier"
    assert doc["metadata"]["namespace"] == "ns"
    assert doc["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "mlops-kit"
    assert doc["metadata"]["annotations"] == {
        "mlops-kit.io/environment": "staging",
        "mlops-kit.io/model-version": "3",
        "mlops-kit.io/flavour": "mlflow",
        "mlops-kit.io/model-uri": "s3://models/wine-classifier/3/artifacts",
        "mlops-kit.io/run-id": "0f3c2a9d41b84e0c9d1e",
    }
    assert doc["spec"]["protocol"] == "v2"
    (predictor,) = doc["spec"]["predictors"]
    assert (predictor["name"], predictor["replicas"], predictor["traffic"]) == ("v3", 2, 100)
    assert predictor["graph"] == {
        "name": "wine-classifier",
        "implementation": "MLFLOW_SERVER",
        "modelUri": "s3://models/wine-classifier/3/artifacts",
        "children": [],
    }
    (container,) = predictor["componentSpecs"][0]["spec"]["containers"]
    assert container == {
        "name": "wine-classifier",
        "resources": {
            "requests": {"cpu": "100m", "memory": "512Mi"},
            "limits": {"cpu": "1", "memory": "1Gi"},
        },
    }


def test_seldon_v1_flavours():
    def graph_and_container(flavour):
        (predictor,) = manifests.render(SPECS[flavour], "seldon-v1")["spec"]["predictors"]
        return predictor["graph"], predictor["componentSpecs"][0]["spec"]["containers"][0]

    graph, container = graph_and_container("sklearn")
    assert graph["implementation"] == "SKLEARN_SERVER"
    assert container["resources"] == {
        "requests": {"cpu": "250m", "memory": "256Mi"},
        "limits": {"memory": "1Gi"},
    }
    graph, container = graph_and_container("custom")
    assert graph["type"] == "MODEL" and "implementation" not in graph
    assert graph["modelUri"] == "file:///srv/models/wine/4"
    assert container["image"] == "registry.example.com/wine-server:1.2"
    graph, container = graph_and_container("embedded")
    assert graph["type"] == "MODEL" and "modelUri" not in graph
    assert container["image"] == "registry.example.com/wine-embedded:5"


def test_seldon_v2_model_shape():
    doc = manifests.render(SPECS["sklearn"], "seldon-v2")
    assert (doc["apiVersion"], doc["kind"]) == ("mlops.seldon.io/v1alpha1", "Model")
    assert doc["spec"] == {
        "storageUri": "gs://bucket/iris/12",
        "requirements": ["sklearn"],
        "replicas": 0,
        "memory": "256Mi",
    }
    assert manifests.render(SPECS["mlflow"], "seldon-v2")["spec"]["requirements"] == ["mlflow"]
    assert doc["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "mlops-kit"
    assert "namespace" not in doc["metadata"]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("flavour", list(SPECS))
def test_storage_secret_is_valid_for_the_crd_and_reads_back(schemas_dir, flavour, fmt):
    spec = SPECS[flavour].model_copy(update={"storage_secret": "mlops-kit-s3"})
    doc = manifests.render(spec, fmt, namespace="mlops-demo-staging")
    validate(doc, schemas_dir)
    assert manifests.spec_from_manifest(manifests.load(manifests.dump(doc))) == spec


def test_storage_secret_is_where_seldon_reads_it():
    spec = SPECS["mlflow"].model_copy(update={"storage_secret": "team-s3"})
    (predictor,) = manifests.render(spec, "seldon-v1")["spec"]["predictors"]
    assert predictor["graph"]["envSecretRefName"] == "team-s3"
    assert predictor["graph"]["modelUri"] == "s3://models/wine-classifier/3/artifacts"
    body = manifests.render(spec, "seldon-v2")["spec"]
    assert (body["storageUri"], body["secretName"]) == (spec.model_uri, "team-s3")
    for fmt in FORMATS:  # none without one
        assert "secretName" not in manifests.dump(manifests.render(SPECS["mlflow"], fmt))
        assert "envSecretRefName" not in manifests.dump(manifests.render(SPECS["mlflow"], fmt))


@pytest.mark.parametrize("fmt", FORMATS)
def test_storage_secret_template_is_a_valid_secret_for_rclone_remote_s3(fmt):
    import json

    doc = manifests.render_storage_secret(
        "mlops-kit-s3", fmt, "mlops-demo-staging", region="eu-west-1", endpoint="http://minio:9000"
    )
    kubernetes_validate.validate(
        manifests.load(manifests.dump(doc)), kubernetes_validate.latest_version(), strict=True
    )
    data = doc["stringData"]
    if fmt == "seldon-v1":  # the storage initializer's environment
        assert data["RCLONE_CONFIG_S3_TYPE"] == "s3"
        assert data["RCLONE_CONFIG_S3_ENV_AUTH"] == "false"
        assert data["RCLONE_CONFIG_S3_ENDPOINT"] == "http://minio:9000"
        assert data["RCLONE_CONFIG_S3_REGION"] == "eu-west-1"
    else:  # an rclone remote named like the URI's scheme
        remote = json.loads(data["s3"])
        assert (remote["type"], remote["name"]) == ("s3", "s3")
        assert remote["parameters"]["endpoint"] == "http://minio:9000"
    assert "REPLACE-WITH-SECRET-ACCESS-KEY" in manifests.dump(doc)
    with pytest.raises(ConfigError, match="not a valid Kubernetes name"):
        manifests.render_storage_secret("Bad_Name", fmt)


def test_experiment_is_valid_and_shaped_for_a_canary(schemas_dir):
    doc = manifests.render_experiment(
        "wine-classifier-canary",
        [("wine-classifier-v3", 90), ("wine-classifier-v4", 10)],
        default="wine-classifier-v3",
        namespace="seldon-mesh",
    )
    validate(doc, schemas_dir)
    assert doc["kind"] == "Experiment"
    assert doc["spec"] == {
        "default": "wine-classifier-v3",
        "candidates": [
            {"name": "wine-classifier-v3", "weight": 90},
            {"name": "wine-classifier-v4", "weight": 10},
        ],
    }
    validate(manifests.render_experiment("ab", [("a", 1), ("b", 1)]), schemas_dir)


@pytest.mark.parametrize(
    ("candidates", "default", "problem"),
    [
        ([], None, "at least one candidate"),
        ([("a", 50), ("a", 50)], None, "twice"),
        ([("a", -1), ("b", 2)], None, "non-negative"),
        ([("a", 0), ("b", 0)], None, "all be zero"),
        ([("a", 1), ("b", 1)], "c", "not a candidate"),
    ],
)
def test_experiment_refuses_bad_splits(candidates, default, problem):
    with pytest.raises(ConfigError, match=problem):
        manifests.render_experiment("exp", candidates, default=default)


def _mutate(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    *parents, last = path.split(".")
    node: Any = doc
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    node[int(last) if last.isdigit() else last] = value
    return doc


@pytest.mark.parametrize(
    ("fmt", "path", "value", "message"),
    [
        ("seldon-v1", "spec.predictors.0.replicas", "2", "is not of type 'integer'"),
        ("seldon-v1", "spec.predictors.0.replicas", 2**31, "int32"),
        ("seldon-v1", "spec.predictors.0.graph.modelURI", "s3://typo", "modelURI"),
        (
            "seldon-v1",
            "spec.predictors.0.componentSpecs.0.spec.containers.0.resources.requests.cpu",
            "lots",
            "does not match",
        ),
        ("seldon-v1", "apiVersion", "machinelearning.seldon.io/v2", "was expected"),
        ("seldon-v2", "spec.replicas", "2", "is not of type 'integer'"),
        ("seldon-v2", "spec.memory", "1 gig", "does not match"),
        ("seldon-v2", "spec.requirements", "mlflow", "is not of type 'array'"),
        ("seldon-v2", "metadata.labels", ["not", "a", "map"], "is not of type"),
        ("seldon-v2", "metadata.generateNames", "x-", "generateNames"),
    ],
)
def test_validator_catches_bad_documents(schemas_dir, fmt, path, value, message):
    good = manifests.render(SPECS["mlflow"], fmt)
    validate(good, schemas_dir)
    with pytest.raises(jsonschema.ValidationError, match=re.escape(message)):
        validate(_mutate(good, path, value), schemas_dir)


def test_validator_catches_bad_metadata_names(schemas_dir):
    good = manifests.render(SPECS["mlflow"], "seldon-v2")
    with pytest.raises(AssertionError, match="invalid value"):
        validate(_mutate(good, "metadata.labels.team", "data science"), schemas_dir)
    with pytest.raises(AssertionError, match="not a DNS subdomain"):
        validate(_mutate(good, "metadata.name", "Wine_Classifier"), schemas_dir)


def test_kubernetes_validate_knows_the_crds_but_not_their_objects(schemas_dir):
    """kubernetes-validate ships core schemas only: it checks the CRDs, ObjectMeta above."""
    version = kubernetes_validate.latest_version()
    for _, relpath in CRDS.values():
        crd = load_yaml(schemas_dir / relpath)
        kubernetes_validate.validate(crd, version, strict=True)
    with pytest.raises(kubernetes_validate.SchemaNotFoundError):
        kubernetes_validate.validate(manifests.render(SPECS["mlflow"]), version, strict=True)


@pytest.mark.parametrize(
    ("doc", "problem"),
    [
        ({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}, "ConfigMap"),
        (["not", "a", "mapping"], "mapping"),
        ({"apiVersion": "mlops.seldon.io/v1alpha1", "kind": "Model"}, "metadata.name"),
    ],
)
def test_foreign_documents_are_refused(doc, problem):
    with pytest.raises(ConfigError, match=re.escape(problem)):
        manifests.spec_from_manifest(doc)


def test_documents_not_made_by_mlops_kit_are_refused():
    doc = manifests.render(SPECS["mlflow"], "seldon-v1")
    foreign = _mutate(doc, "metadata.labels", {"app": "wine"})
    with pytest.raises(ConfigError, match="not managed by mlops-kit"):
        manifests.spec_from_manifest(foreign)
    annotations = dict(doc["metadata"]["annotations"])
    del annotations["mlops-kit.io/model-version"]
    with pytest.raises(ConfigError, match="mlops-kit.io/model-version"):
        manifests.spec_from_manifest(_mutate(doc, "metadata.annotations", annotations))
    with pytest.raises(ConfigError, match="exactly one predictor"):
        manifests.spec_from_manifest(_mutate(doc, "spec.predictors", []))
    with pytest.raises(ConfigError, match="replicas"):
        manifests.spec_from_manifest(_mutate(doc, "spec.predictors.0.replicas", "many"))


def test_a_hand_edit_to_the_body_is_what_reads_back():
    """GitOps means people edit the YAML: the body, which the cluster acts on, wins."""
    text = manifests.dump(manifests.render(SPECS["mlflow"], "seldon-v1"))
    edited = text.replace("replicas: 2", "replicas: 5")
    assert edited != text
    assert manifests.spec_from_manifest(manifests.load(edited)).replicas == 5
    v2 = manifests.dump(manifests.render(SPECS["mlflow"], "seldon-v2"))
    spec = manifests.spec_from_manifest(manifests.load(v2.replace("memory: 512Mi", "memory: 2Gi")))
    assert spec.resources.memory_request == "2Gi"


def test_render_refuses_names_a_cluster_would_refuse():
    spec = SPECS["mlflow"].model_copy(update={"model_name": "Wine_Classifier"})
    with pytest.raises(ConfigError, match="not a valid Kubernetes name"):
        manifests.render(spec)
    with pytest.raises(ConfigError, match="unknown manifest format"):
        manifests.render(SPECS["mlflow"], "seldon-v3")  # type: ignore[arg-type]


def test_dump_is_stable_and_load_checks_its_input():
    doc = manifests.render(SPECS["custom"], "seldon-v1")
    text = manifests.dump(doc)
    assert text == manifests.dump(manifests.render(SPECS["custom"], "seldon-v1"))
    assert text.startswith("apiVersion: machinelearning.seldon.io/v1\nkind: SeldonDeployment\n")
    assert "model-version: '4'" in text  # a string, not the number 4
    assert manifests.load(text) == doc
    with pytest.raises(ConfigError, match="mapping"):
        manifests.load("- a\n- b\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        manifests.load("key: [unclosed\n")

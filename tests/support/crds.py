"""The official Seldon and CSI snapshot CRD schemas (vendored in tests/fixtures/crds) as validators.

Documents are checked as strictly as an API server would: unknown fields refused,
formats and metadata names checked."""

from __future__ import annotations

import functools
import importlib.resources
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml
from referencing import Registry, Resource

from mlops_kit.gitops import manifests

SCHEMAS_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "crds"  # vendored, see NOTICE
CRDS = {  # kind: (apiVersion, CRD file)
    "SeldonDeployment": (
        "machinelearning.seldon.io/v1",
        "seldon-core-v1.18.2/machinelearning.seldon.io_seldondeployments.yaml",
    ),
    "Model": ("mlops.seldon.io/v1alpha1", "seldon-core-v2.10.2/mlops.seldon.io_models.yaml"),
    "Experiment": (
        "mlops.seldon.io/v1alpha1",
        "seldon-core-v2.10.2/mlops.seldon.io_experiments.yaml",
    ),
    "VolumeSnapshot": (
        "snapshot.storage.k8s.io/v1",
        "external-snapshotter-v8.6.0/snapshot.storage.k8s.io_volumesnapshots.yaml",
    ),
}
OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"


def structural(schema: dict[str, Any]) -> dict[str, Any]:
    """An OpenAPI v3 CRD schema as plain JSON Schema, as strictly as the API server checks it.

    Unknown fields are rejected (kubectl's default ``--validate=strict``), ``nullable`` allows
    null, ``x-kubernetes-int-or-string`` allows either type; the other ``x-kubernetes-*``
    keys constrain list merging, not documents, and are ignored like any unknown keyword.
    """
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in ("properties", "patternProperties"):
            out[key] = {name: structural(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "not") and isinstance(value, dict):
            out[key] = structural(value)
        elif key in ("anyOf", "allOf", "oneOf"):
            out[key] = [structural(sub) for sub in value]
        elif key != "description":
            out[key] = value
    preserve = out.get("x-kubernetes-preserve-unknown-fields")
    if "properties" in out and "additionalProperties" not in out and not preserve:
        out["additionalProperties"] = False
    if out.get("x-kubernetes-int-or-string") and "anyOf" not in out:
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if out.pop("nullable", False) and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    return out


def format_checker() -> jsonschema.FormatChecker:
    checker = jsonschema.FormatChecker()
    for name, bits in (("int32", 32), ("int64", 64)):
        limit = 2 ** (bits - 1)
        checker.checks(name)(
            functools.partial(lambda v, lim: not isinstance(v, int) or -lim <= v < lim, lim=limit)
        )
    return checker


@functools.cache
def object_meta_registry() -> Registry:
    """kubernetes-validate's strict ObjectMeta: it has no CRD schemas but knows core types."""
    version = kubernetes_validate.latest_version()
    path = (
        importlib.resources.files("kubernetes_validate")
        / "kubernetes-json-schema"
        / f"v{version}-local-strict"
        / "_definitions.json"
    )
    return Resource.from_contents(json.loads(path.read_text())) @ Registry()


def load_yaml(path: Path) -> Any:
    # The v1 CRD is 0.8 MB: libyaml reads it in a fraction of the pure-Python time.
    return yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


@functools.cache
def validator(directory: Path, kind: str) -> jsonschema.Draft202012Validator:
    api_version, relpath = CRDS[kind]
    crd = load_yaml(directory / relpath)
    group, version = api_version.split("/")
    assert (crd["spec"]["group"], crd["spec"]["names"]["kind"]) == (group, kind)
    (served,) = [v for v in crd["spec"]["versions"] if v["name"] == version and v["served"]]
    schema = structural(served["schema"]["openAPIV3Schema"])
    # The API server checks these itself; the CRD only says "string" / "object".
    schema["properties"]["apiVersion"] = {"const": api_version}
    schema["properties"]["kind"] = {"const": kind}
    schema["properties"]["metadata"] = {
        "$ref": f"https://kubernetes.io/api/_definitions.json#/$defs/{OBJECT_META}"
    }
    schema["required"] = ["apiVersion", "kind", "metadata", "spec"]
    return jsonschema.Draft202012Validator(
        schema, registry=object_meta_registry(), format_checker=format_checker()
    )


_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_NAME_PART = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")


def qualified_name_problems(key: str) -> list[str]:
    prefix, _, name = key.rpartition("/")
    problems = []
    if prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.fullmatch(prefix)):
        problems.append(f"key prefix {prefix!r} is not a DNS subdomain")
    if len(name) > 63 or not _NAME_PART.fullmatch(name):
        problems.append(f"key {key!r} is not a qualified name")
    return problems


def metadata_problems(meta: dict[str, Any]) -> list[str]:
    """What apimachinery's ObjectMeta validation would refuse (names, label and annotation keys)."""
    problems = []
    if len(meta["name"]) > 253 or not _DNS_SUBDOMAIN.fullmatch(meta["name"]):
        problems.append(f"name {meta['name']!r} is not a DNS subdomain")
    for key, value in (meta.get("labels") or {}).items():
        problems += qualified_name_problems(key)
        if len(value) > 63 or (value and not _NAME_PART.fullmatch(value)):
            problems.append(f"label {key}={value!r} has an invalid value")
    for key in meta.get("annotations") or {}:
        problems += qualified_name_problems(key)
    return problems


def validate(doc: dict[str, Any], directory: Path = SCHEMAS_DIR) -> None:
    """Raise ValidationError (AssertionError for metadata names) where a cluster would refuse."""
    # Through YAML, as the document reaches the cluster from the GitOps repository.
    doc = yaml.safe_load(manifests.dump(doc))
    validator(directory, doc["kind"]).validate(doc)
    problems = metadata_problems(doc["metadata"])
    assert not problems, problems

"""Argo CD's Application schema (the part our documents use) and a validator."""

from __future__ import annotations

from typing import Any

import jsonschema
import yaml

from tests.support.crds import OBJECT_META, metadata_problems, object_meta_registry

# The part of Argo CD's Application CRD (argoproj.io/v1alpha1, manifests/crds/
# application-crd.yaml) that these documents use, as strict as the API server is: unknown
# fields are refused where the CRD lists the properties.
_STRING = {"type": "string"}
_BOOL = {"type": "boolean"}
APPLICATION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "argoproj.io/v1alpha1"},
        "kind": {"const": "Application"},
        "metadata": {"$ref": f"https://kubernetes.io/api/_definitions.json#/$defs/{OBJECT_META}"},
        "operation": {"type": "object"},
        "status": {"type": "object"},
        "spec": {
            "type": "object",
            "required": ["destination", "project"],
            "additionalProperties": False,
            "properties": {
                "project": _STRING,
                "source": {
                    "type": "object",
                    "required": ["repoURL"],
                    "additionalProperties": False,
                    "properties": {
                        "repoURL": _STRING,
                        "path": _STRING,
                        "targetRevision": _STRING,
                        "chart": _STRING,
                        "ref": _STRING,
                        "name": _STRING,
                        "directory": {
                            "type": "object",
                            "additionalProperties": False,
                            "properties": {
                                "recurse": _BOOL,
                                "include": _STRING,
                                "exclude": _STRING,
                                "jsonnet": {"type": "object"},
                            },
                        },
                        "helm": {"type": "object"},
                        "kustomize": {"type": "object"},
                        "plugin": {"type": "object"},
                    },
                },
                "sources": {"type": "array"},
                "destination": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"server": _STRING, "namespace": _STRING, "name": _STRING},
                },
                "syncPolicy": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "automated": {
                            "type": "object",
                            "additionalProperties": False,
                            "properties": {
                                "prune": _BOOL,
                                "selfHeal": _BOOL,
                                "allowEmpty": _BOOL,
                                "enabled": _BOOL,
                            },
                        },
                        "syncOptions": {"type": "array", "items": _STRING},
                        "retry": {"type": "object"},
                        "managedNamespaceMetadata": {"type": "object"},
                    },
                },
                "ignoreDifferences": {"type": "array"},
                "info": {"type": "array"},
                "revisionHistoryLimit": {"type": "integer", "format": "int64"},
            },
        },
    },
}
# Sync options Argo CD knows (docs: user-guide/sync-options).
KNOWN_SYNC_OPTIONS = {
    "CreateNamespace",
    "PruneLast",
    "ApplyOutOfSyncOnly",
    "ServerSideApply",
    "Validate",
    "PrunePropagationPolicy",
    "Replace",
    "RespectIgnoreDifferences",
    "FailOnSharedResource",
    "SkipDryRunOnMissingResource",
}


def validate_application(doc: dict[str, Any]) -> None:
    """Structure as Argo CD's CRD has it, plus what its controller insists on."""
    doc = yaml.safe_load(yaml.safe_dump(doc))  # through YAML, as committed
    jsonschema.Draft202012Validator(APPLICATION_SCHEMA, registry=object_meta_registry()).validate(
        doc
    )
    assert not metadata_problems(doc["metadata"])
    spec = doc["spec"]
    assert ("source" in spec) != ("sources" in spec), "exactly one of source / sources"
    destination = spec["destination"]
    assert ("server" in destination) != ("name" in destination), "server or name, not both"
    for option in spec.get("syncPolicy", {}).get("syncOptions", []):
        key, sep, value = option.partition("=")
        assert sep and value and key in KNOWN_SYNC_OPTIONS, option

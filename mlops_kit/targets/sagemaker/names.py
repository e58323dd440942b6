"""Names and tags of what the SageMaker target creates; no AWS SDK needed to compute them.

SageMaker names endpoints, endpoint configs, models and training jobs with at most 63
characters of ``[a-zA-Z0-9-]`` (``^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}``). Every resource the
toolkit creates carries the tags below, which is how status, listing and teardown find ours
and nothing else.
"""

from __future__ import annotations

import hashlib
import re

from mlops_kit.errors import ConfigError

MAX_NAME = 63

TAG = "mlops-kit:"
PROJECT_TAG = TAG + "project"
ENVIRONMENT_TAG = TAG + "environment"
MODEL_TAG = TAG + "model"
VERSION_TAG = TAG + "version"
RUN_ID_TAG = TAG + "run-id"

_INVALID = re.compile(r"[^a-zA-Z0-9-]+")
_VALID = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")


def digest(*parts: str, length: int = 8) -> str:
    """A short stable hex digest of ``parts``: tells apart what a truncated name cannot."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:length]


def resource_name(*parts: str) -> str:
    """``parts`` joined by ``-`` as a valid SageMaker name.

    Characters SageMaker refuses become ``-``; a name over 63 characters is cut and ends
    with a digest of the whole, so two long names never collide.
    """
    raw = "-".join(p for p in parts if p)
    name = _INVALID.sub("-", raw).strip("-")
    name = re.sub(r"-{2,}", "-", name)
    if not name:
        raise ConfigError(f"{raw!r} leaves nothing to name a SageMaker resource with")
    if len(name) > MAX_NAME:
        tail = digest(raw)
        name = name[: MAX_NAME - len(tail) - 1].rstrip("-") + "-" + tail
    assert _VALID.fullmatch(name), name
    return name


def endpoint_name(model_name: str, environment: str) -> str:
    """The endpoint serving ``model_name`` in ``environment``: ``<model>-<environment>``."""
    return resource_name(model_name, environment)


def variant_name(version: str) -> str:
    """The production variant serving a version: ``v<version>``."""
    return resource_name(f"v{version}")


def version_of_variant(variant: str | None) -> str | None:
    """The version a variant named by :func:`variant_name` serves, or None."""
    if variant and variant.startswith("v") and len(variant) > 1:
        return variant[1:]
    return None


def tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    """``{key: value}`` as SageMaker's ``[{"Key": ..., "Value": ...}]``."""
    return [{"Key": key, "Value": value} for key, value in tags.items()]


def tag_dict(tags: list[dict[str, str]] | None) -> dict[str, str]:
    """SageMaker's tag list as a mapping."""
    return {t["Key"]: t["Value"] for t in tags or []}


__all__ = [
    "ENVIRONMENT_TAG",
    "MODEL_TAG",
    "PROJECT_TAG",
    "RUN_ID_TAG",
    "VERSION_TAG",
    "digest",
    "endpoint_name",
    "resource_name",
    "tag_dict",
    "tag_list",
    "variant_name",
    "version_of_variant",
]

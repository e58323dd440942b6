"""What a Seldon object's status and labels say: ready or not for a version, ours or not."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlops_kit.gitops import manifests


@dataclass(frozen=True)
class Readiness:
    """What an object's status says about one version."""

    ready: bool
    detail: str
    failed: bool = False
    """The operator gave up on this generation (v1 ``state: Failed``)."""


def readiness(doc: dict[str, Any], version: str | None = None) -> Readiness:
    """Is ``doc`` (a SeldonDeployment, Model or Experiment) ready, for ``version`` if given?

    Ready means: the version annotation matches, the operator has observed the current
    generation (when it reports ``observedGeneration``), and v1 ``status.state`` is
    ``Available`` / v2 the ``Ready`` condition is ``True``.
    """
    meta = doc.get("metadata") or {}
    annotated = (meta.get("annotations") or {}).get(manifests.VERSION_ANNOTATION)
    if version is not None and annotated is not None and annotated != version:
        return Readiness(False, f"the cluster holds version {annotated}, not {version}")
    status = doc.get("status") or {}
    generation = meta.get("generation")
    observed = status.get("observedGeneration")
    if isinstance(generation, int) and isinstance(observed, int) and observed < generation:
        return Readiness(
            False, f"the operator has not processed generation {generation} yet (at {observed})"
        )
    if doc.get("kind") == "SeldonDeployment":
        state = status.get("state")
        description = status.get("description") or ""
        if state == "Available":
            return Readiness(True, "Available")
        text = f"state {state or 'not reported yet'}" + (f": {description}" if description else "")
        return Readiness(False, text, failed=state == "Failed")
    conditions = {c.get("type"): c for c in status.get("conditions") or [] if isinstance(c, dict)}
    ready = conditions.get("Ready")
    if ready is not None and ready.get("status") == "True":
        return Readiness(True, "Ready")
    if ready is None:
        return Readiness(False, "no Ready condition reported yet")
    said = ready.get("message") or ready.get("reason") or "not ready"
    return Readiness(False, f"Ready is {ready.get('status')}: {said}")


def predictor_readiness(doc: dict[str, Any]) -> dict[str, Readiness]:
    """A SeldonDeployment's readiness per predictor, from ``status.deploymentStatus``.

    Seldon names each predictor's Kubernetes Deployment ``<name>-<predictor>-<n>-<container>``
    and reports its replicas there; a predictor is ready when all of them are available.
    """
    name = (doc.get("metadata") or {}).get("name", "")
    reported = (doc.get("status") or {}).get("deploymentStatus") or {}
    found: dict[str, Readiness] = {}
    for predictor in (doc.get("spec") or {}).get("predictors") or []:
        prefix = f"{name}-{predictor.get('name')}-"
        entries = [v for k, v in reported.items() if k.startswith(prefix) and isinstance(v, dict)]
        if not entries:
            found[predictor.get("name")] = Readiness(False, "not reported yet")
            continue
        wanted = sum(int(e.get("replicas") or 0) for e in entries)
        available = sum(int(e.get("availableReplicas") or 0) for e in entries)
        ready = available >= wanted
        found[predictor.get("name")] = Readiness(
            ready, "ready" if ready else f"{available}/{wanted} replicas available"
        )
    return found


def version_of(doc: dict[str, Any]) -> str | None:
    """The model version ``doc`` is annotated with, if any."""
    annotations = (doc.get("metadata") or {}).get("annotations") or {}
    return annotations.get(manifests.VERSION_ANNOTATION)


def managed(doc: dict[str, Any]) -> bool:
    """Whether this toolkit made ``doc`` (its managed-by label)."""
    labels = (doc.get("metadata") or {}).get("labels") or {}
    return labels.get(manifests.MANAGED_BY_LABEL) == manifests.MANAGED_BY


__all__ = ["Readiness", "managed", "predictor_readiness", "readiness", "version_of"]

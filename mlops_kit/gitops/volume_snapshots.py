"""A ``VolumeSnapshot`` per registered version, for data that lives on a Kubernetes volume.

When ``pipeline.volume`` names the PersistentVolumeClaim holding the training data, each
registered version gets a ``snapshot.storage.k8s.io/v1`` ``VolumeSnapshot`` of that claim,
committed to the GitOps repository as ``volume-snapshots/<model>/<model>-v<version>.yaml``.
An Argo CD Application pointed at ``volume-snapshots/`` (or ``kubectl apply``) makes the
cluster's CSI driver take it; restoring is a new PVC whose ``dataSource`` names the snapshot.
The content-addressed snapshot in the store (:mod:`mlops_kit.pipeline.snapshots`) is what the
toolkit itself restores from; the VolumeSnapshot keeps the whole volume as it was.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlops_kit.gitops.manifests import MANAGED_BY, MANAGED_BY_LABEL, NAME_LABEL, dump

if TYPE_CHECKING:
    from mlops_kit.gitops.repository import GitOpsRepo
    from mlops_kit.settings import Settings

API_VERSION = "snapshot.storage.k8s.io/v1"
SNAPSHOTS_DIR = "volume-snapshots"
VERSION_LABEL = "mlops-kit.io/model-version"
DIGEST_ANNOTATION = "mlops-kit.io/snapshot-digest"


def namespace(settings: Settings) -> str:
    """The claim's namespace: ``pipeline.volume.namespace``, else the first environment's."""
    volume = settings.pipeline.volume
    if volume is not None and volume.namespace:
        return volume.namespace
    first = settings.environments[0]
    return first.namespace or f"{settings.project}-{first.name}"


def render(settings: Settings, version: str, digest: str) -> dict[str, Any] | None:
    """The VolumeSnapshot of version ``version``'s data volume; None without ``pipeline.volume``.

    ``digest`` is the version's content-addressed snapshot, recorded as an annotation so the
    two snapshots of one version can be matched.
    """
    volume = settings.pipeline.volume
    if volume is None:
        return None
    spec: dict[str, Any] = {"source": {"persistentVolumeClaimName": volume.claim}}
    if volume.snapshot_class:
        spec["volumeSnapshotClassName"] = volume.snapshot_class
    return {
        "apiVersion": API_VERSION,
        "kind": "VolumeSnapshot",
        "metadata": {
            "name": f"{settings.model_name}-v{version}",
            "namespace": namespace(settings),
            "labels": {
                MANAGED_BY_LABEL: MANAGED_BY,
                NAME_LABEL: settings.model_name,
                VERSION_LABEL: str(version),
            },
            "annotations": {DIGEST_ANNOTATION: digest},
        },
        "spec": spec,
    }


def path_for(model_name: str, version: str) -> str:
    """Repository path of a version's VolumeSnapshot."""
    return f"{SNAPSHOTS_DIR}/{model_name}/{model_name}-v{version}.yaml"


def commit(
    repo: GitOpsRepo, settings: Settings, version: str, digest: str, *, actor: str
) -> str | None:
    """Commit version ``version``'s VolumeSnapshot (if a volume is configured); the commit sha."""
    doc = render(settings, version, digest)
    if doc is None:
        return None
    return repo.commit_files(
        repo.branch,
        {path_for(settings.model_name, version): dump(doc)},
        actor=actor,
        message=f"Snapshot the data volume of {settings.model_name} v{version}",
        trailers={"Model": settings.model_name, "Model-Version": str(version)},
    )

"""Argo CD ``Application`` documents: one per environment, watching its GitOps path.

Each Application points Argo CD at ``environments/<environment>/`` of the GitOps repository
and at the environment's namespace. Staging syncs by itself (automated, with ``prune`` and
``selfHeal``: what the repository says is what runs); production syncs by hand, after an
approved promotion is merged (``argocd app sync <project>-production``, or the UI).

The documents are committed to the GitOps repository under ``argocd/<environment>.yaml``
(apply them once, or let an app-of-apps Application watch ``argocd/``) and can be applied
through the Kubernetes API by :func:`apply_applications`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from mlops_kit.gitops import manifests
from mlops_kit.gitops.repository import ENVIRONMENTS_DIR

if TYPE_CHECKING:
    from mlops_kit.gitops.repository import GitOpsRepo
    from mlops_kit.settings import EnvironmentSettings, Settings
    from mlops_kit.targets.kubernetes import Cluster

ARGOCD_API = "argoproj.io/v1alpha1"
APPLICATIONS_DIR = "argocd"
"""Where the Application documents live in the GitOps repository."""
IN_CLUSTER = "https://kubernetes.default.svc"
"""Argo CD's name for the cluster it runs in."""
SYNC_OPTIONS = ("CreateNamespace=true",)


def application_name(settings: Settings, environment: EnvironmentSettings) -> str:
    """``<project>-<environment>``: unique across the projects one Argo CD serves."""
    return f"{settings.project}-{environment.name}"


def repo_url(settings: Settings) -> str:
    """The GitOps remote Argo CD should clone: ``gitops.remote``, else the local bare repo.

    A local path only works for an Argo CD that can read this machine's disk; real clusters
    need ``gitops.remote`` set to a URL they can reach.
    """
    return settings.gitops.remote or str(
        (settings.state_dir / "gitops").expanduser().resolve() / "origin.git"
    )


def render_application(
    settings: Settings,
    environment: EnvironmentSettings,
    *,
    argocd_namespace: str = "argocd",
    destination_server: str = IN_CLUSTER,
    project: str = "default",
) -> dict[str, Any]:
    """The ``Application`` that keeps ``environment``'s namespace equal to its GitOps path.

    Automated sync (prune + selfHeal) for staging environments, manual for production.
    """
    from mlops_kit.targets.kubernetes import namespace_for

    sync_policy: dict[str, Any] = {}
    if environment.kind == "staging":
        sync_policy["automated"] = {"prune": True, "selfHeal": True}
    sync_policy["syncOptions"] = list(SYNC_OPTIONS)
    return {
        "apiVersion": ARGOCD_API,
        "kind": "Application",
        "metadata": {
            "name": application_name(settings, environment),
            "namespace": argocd_namespace,
            "labels": {
                manifests.MANAGED_BY_LABEL: manifests.MANAGED_BY,
                manifests.ENVIRONMENT_LABEL: environment.name,
            },
        },
        "spec": {
            "project": project,
            "source": {
                "repoURL": repo_url(settings),
                "targetRevision": settings.gitops.branch,
                "path": f"{ENVIRONMENTS_DIR}/{environment.name}",
                "directory": {"recurse": False, "include": "*.yaml"},
            },
            "destination": {
                "server": destination_server,
                "namespace": namespace_for(settings, environment),
            },
            "syncPolicy": sync_policy,
        },
    }


def render_schedules_application(settings: Settings, path: str, **options: Any) -> dict[str, Any]:
    """The ``Application`` keeping the retraining CronJobs under ``path`` in the cluster.

    They run in the staging environment's namespace; automated sync with prune, so removing a
    schedule's file from the repository removes its CronJob. ``options`` as for
    :func:`render_application`.
    """
    app = render_application(settings, settings.environment_of_kind("staging"), **options)
    app["metadata"]["name"] = f"{settings.project}-schedules"
    app["spec"]["source"]["path"] = path
    app["spec"]["syncPolicy"]["automated"] = {"prune": True, "selfHeal": True}
    return app


def render_applications(
    settings: Settings,
    environments: Iterable[EnvironmentSettings] | None = None,
    **options: Any,
) -> list[dict[str, Any]]:
    """One Application per environment (all configured ones unless given), in order."""
    chosen = list(settings.environments if environments is None else environments)
    return [render_application(settings, env, **options) for env in chosen]


def application_path(environment: str) -> str:
    """``argocd/<environment>.yaml``: where an Application is committed."""
    return f"{APPLICATIONS_DIR}/{environment}.yaml"


def write_applications(
    repo: GitOpsRepo, documents: Sequence[dict[str, Any]], *, actor: str
) -> str | None:
    """Commit the documents to the GitOps repository; the commit's sha, None if unchanged."""
    files: dict[str, str | None] = {
        application_path(doc["metadata"]["labels"][manifests.ENVIRONMENT_LABEL]): manifests.dump(
            doc
        )
        for doc in documents
    }
    repo.ensure()
    return repo.commit_files(
        repo.branch,
        files,
        actor=actor,
        message="Argo CD Applications for " + ", ".join(sorted(files)),
        trailers={"Environment": "all"} if len(files) > 1 else None,
    )


def apply_applications(cluster: Cluster, documents: Sequence[dict[str, Any]]) -> list[str]:
    """Server-side apply each Application into its namespace; their names.

    TargetError names what to install when the cluster has no Argo CD.
    """
    from mlops_kit.targets.kubernetes import ARGOCD_APPLICATION

    cluster.require(ARGOCD_APPLICATION)
    applied = []
    for doc in documents:
        cluster.apply(ARGOCD_APPLICATION, doc, doc["metadata"]["namespace"])
        applied.append(doc["metadata"]["name"])
    return applied


__all__ = [
    "APPLICATIONS_DIR",
    "ARGOCD_API",
    "IN_CLUSTER",
    "application_name",
    "application_path",
    "apply_applications",
    "render_application",
    "render_applications",
    "render_schedules_application",
    "repo_url",
    "write_applications",
]

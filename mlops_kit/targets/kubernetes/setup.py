"""Set-up of Kubernetes environments (notebook 01): cluster, Seldon CRDs, namespaces, Argo CD.

Checks the cluster answers and serves the Seldon Core CRDs of ``gitops.manifest``, creates a
namespace per environment, commits one Argo CD ``Application`` per environment to the GitOps
repository (``argocd/<env>.yaml``) and, when asked, applies them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlops_kit.errors import TargetError
from mlops_kit.targets.base import Check, SetupReport
from mlops_kit.targets.kubernetes.cluster import Cluster
from mlops_kit.targets.kubernetes.crds import CRD_FOR_FORMAT, SELDON_EXPERIMENT
from mlops_kit.targets.kubernetes.endpoints import namespace_for

if TYPE_CHECKING:
    from mlops_kit.project import Project
    from mlops_kit.settings import EnvironmentSettings


def setup_kubernetes(
    project: Project,
    envs: list[EnvironmentSettings],
    report: SetupReport,
    *,
    apply_argocd: bool = False,
    cluster: Cluster | None = None,
) -> None:
    """Cluster reachable, Seldon CRDs served, namespaces, Argo CD Applications.

    ``apply_argocd`` also applies the Applications to the cluster; ``cluster`` replaces the
    connection the Kubernetes settings describe.
    """
    settings = project.settings
    config = cluster.config if cluster is not None else settings.kubernetes
    connection = cluster or Cluster(config)
    try:
        try:
            version = connection.version()
        except TargetError as exc:
            report.checks.append(Check("kubernetes cluster", False, str(exc)))
            return
        report.checks.append(
            Check("kubernetes cluster", True, f"{version} at {connection.describe()}")
        )
        fmt = settings.gitops.manifest
        required = [CRD_FOR_FORMAT[fmt]] + ([SELDON_EXPERIMENT] if fmt == "seldon-v2" else [])
        missing = [crd for crd in required if not connection.serves(crd)]
        served = ", ".join(f"{crd.kind} ({crd.api_version})" for crd in required)
        report.checks.append(
            Check(
                "Seldon Core CRDs",
                not missing,
                "; ".join(crd.missing() for crd in missing) or f"{served} served",
            )
        )
        for env in envs:
            namespace = namespace_for(settings, env)
            labels = {
                "mlops-kit.io/environment": env.name,
                "mlops-kit.io/project": settings.project,
            }
            try:
                created = connection.ensure_namespace(namespace, labels)
            except TargetError as exc:
                report.checks.append(Check(f"namespace {env.name}", False, str(exc)))
                continue
            state = "created" if created else "exists"
            report.checks.append(Check(f"namespace {env.name}", True, f"{namespace} ({state})"))
        _argocd(project, envs, report, config.argocd_namespace, connection, apply_argocd)
    finally:
        if cluster is None:
            connection.close()


def _argocd(
    project: Project,
    envs: list[EnvironmentSettings],
    report: SetupReport,
    argocd_namespace: str,
    cluster: Cluster,
    apply_argocd: bool,
) -> None:
    from mlops_kit.gitops import argocd
    from mlops_kit.gitops.deploy import current_actor
    from mlops_kit.gitops.repository import GitOpsRepo

    settings = project.settings
    documents = argocd.render_applications(settings, envs, argocd_namespace=argocd_namespace)
    repo = GitOpsRepo.from_settings(settings)
    commit = argocd.write_applications(repo, documents, actor=current_actor())
    paths = ", ".join(argocd.application_path(env.name) for env in envs)
    detail = f"{paths} " + (f"committed ({commit[:10]})" if commit else "unchanged")
    if settings.gitops.remote is None:
        detail += (
            "; repoURL is the local bare repository: set gitops.remote to a git URL the "
            "cluster's Argo CD can clone"
        )
    report.checks.append(Check("Argo CD Applications", True, detail))
    applied: list[str] = []
    if apply_argocd:
        try:
            applied = argocd.apply_applications(cluster, documents)
        except TargetError as exc:
            report.checks.append(Check("Argo CD", False, str(exc)))
        else:
            report.checks.append(
                Check("Argo CD", True, f"applied {', '.join(applied)} in {argocd_namespace!r}")
            )
    for env, doc in zip(envs, documents, strict=True):
        automated = "automated" in doc["spec"]["syncPolicy"]
        report.applications.append(
            {
                "application": doc["metadata"]["name"],
                "environment": env.name,
                "namespace": namespace_for(settings, env),
                "path": doc["spec"]["source"]["path"],
                "sync": "automated (prune, selfHeal)" if automated else "manual",
                "applied": doc["metadata"]["name"] in applied,
            }
        )

"""Bring up and check the environments of a target (notebook 01).

Every target needs the state directory and the registry. On top of that, ``kubernetes``
checks the cluster answers and serves the Seldon Core CRDs of ``gitops.manifest``, creates a
namespace per environment, commits one Argo CD ``Application`` per environment to the GitOps
repository (``argocd/<env>.yaml``) and, when asked, applies them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlops_kit.errors import ConfigError, ParameterError, TargetError

if TYPE_CHECKING:
    import pandas as pd

    from mlops_kit.project import Project
    from mlops_kit.settings import EnvironmentSettings
    from mlops_kit.targets.kubernetes import Cluster

TARGETS = ("local", "kubernetes", "sagemaker")


@dataclass
class Check:
    """One thing set-up verified."""

    name: str
    ok: bool
    detail: str


@dataclass
class SetupReport:
    """What set-up created and verified."""

    target: str
    checks: list[Check] = field(default_factory=list)
    environments: list[dict[str, Any]] = field(default_factory=list)
    applications: list[dict[str, Any]] = field(default_factory=list)
    """The Argo CD Applications rendered (Kubernetes only), one row each."""

    @property
    def ok(self) -> bool:
        """True when every check passed."""
        return all(c.ok for c in self.checks)

    def table(self) -> pd.DataFrame:
        """The checks as a table."""
        import pandas as pd

        return pd.DataFrame([vars(c) for c in self.checks])

    def environments_table(self) -> pd.DataFrame:
        """The configured environments as a table."""
        import pandas as pd

        return pd.DataFrame(self.environments)

    def applications_table(self) -> pd.DataFrame:
        """The Argo CD Applications as a table (empty unless a Kubernetes target is set up)."""
        import pandas as pd

        columns = ["application", "environment", "namespace", "path", "sync", "applied"]
        return pd.DataFrame(self.applications, columns=columns)

    def raise_for_failure(self) -> None:
        """Raise ConfigError listing the failed checks."""
        failed = [f"{c.name}: {c.detail}" for c in self.checks if not c.ok]
        if failed:
            raise ConfigError("set-up failed: " + "; ".join(failed))


def check_target(name: str) -> str:
    """``name`` if it is a known target; ParameterError listing the known ones otherwise."""
    from mlops_kit import targets

    known = sorted(set(TARGETS) | set(targets.names()))
    if name not in known:
        raise ParameterError("target", f"{name!r} is not one of {', '.join(known)}")
    return name


def load_project(
    config: str | os.PathLike[str] | None = None, target: str | None = None, **overrides: Any
) -> Project:
    """Load the project; with ``target``, every environment is deployed through that target.

    ``target=None`` keeps what the project file and ``MLOPS_KIT_ENVIRONMENTS`` say: this is
    how a notebook's ``target`` parameter overrides the configuration for one run.
    """
    from mlops_kit.project import Project

    project = Project.load(config, **overrides)
    if target is None:
        return project
    check_target(target)
    settings = project.settings
    environments = [env.model_copy(update={"target": target}) for env in settings.environments]
    return Project(settings.model_copy(update={"environments": environments}))


def setup(
    project: Project,
    target: str | None = None,
    *,
    apply_argocd: bool = False,
    cluster: Cluster | None = None,
) -> SetupReport:
    """Create what the environments need and check each part; idempotent.

    ``target`` sets every environment up for that target; None sets each up for its own
    configured target. ``apply_argocd`` also applies the Argo CD Applications to the cluster;
    ``cluster`` replaces the connection the Kubernetes settings describe.
    """
    if target is not None:
        check_target(target)
    envs = project.settings.environments
    chosen = {env.name: target or env.target for env in envs}
    report = SetupReport(target=target or ", ".join(sorted(set(chosen.values()))))
    report.checks.append(Check("state directory", True, str(project.ensure_state_dir())))
    report.checks.append(_check_registry(project))
    kubernetes_envs = [env for env in envs if chosen[env.name] == "kubernetes"]
    if kubernetes_envs:
        _setup_kubernetes(project, kubernetes_envs, report, apply_argocd, cluster)
    report.environments = [_environment_row(project, env, chosen[env.name]) for env in envs]
    return report


def _environment_row(project: Project, env: EnvironmentSettings, target: str) -> dict[str, Any]:
    row: dict[str, Any] = {"environment": env.name, "kind": env.kind, "target": target}
    if target == "kubernetes":
        from mlops_kit.targets.kubernetes import namespace_for

        row["namespace"] = namespace_for(project.settings, env)
    row["approvers"] = ", ".join(env.approval.approvers) or "(anyone)"
    row["four_eyes"] = env.approval.four_eyes
    return row


def _check_registry(project: Project) -> Check:
    try:
        experiment = project.experiment_id()
        project.client.search_registered_models(max_results=1)
    except Exception as exc:
        return Check("model registry", False, f"{project.tracking_uri}: {exc}")
    return Check("model registry", True, f"{project.tracking_uri} (experiment {experiment})")


def _setup_kubernetes(
    project: Project,
    envs: list[EnvironmentSettings],
    report: SetupReport,
    apply_argocd: bool,
    cluster: Cluster | None,
) -> None:
    """Cluster reachable, Seldon CRDs served, namespaces, Argo CD Applications."""
    from mlops_kit.targets.kubernetes import (
        CRD_FOR_FORMAT,
        SELDON_EXPERIMENT,
        Cluster,
        namespace_for,
    )

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
    from mlops_kit.targets.kubernetes import namespace_for

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

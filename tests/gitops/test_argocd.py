"""Argo CD Applications and the Kubernetes set-up of notebook 01, against the API emulator."""

from __future__ import annotations

import jsonschema
import pytest
import yaml

from mlops_kit.errors import ConfigError, ParameterError, TargetError
from mlops_kit.gitops import argocd
from mlops_kit.gitops.repository import GitOpsRepo
from mlops_kit.settings import KubernetesSettings, load_settings
from mlops_kit.targets import setup as environments
from mlops_kit.targets.kubernetes import Cluster
from tests.support import seeded_registry, write_project
from tests.support.argocd import validate_application
from tests.support.k8s_emulator import (
    ARGOCD_APPLICATIONS,
    NAMESPACES,
    SELDON_V1,
    KubeEmulator,
    ensure_namespace,
)


def settings_for(tmp_path, **overrides):
    envs = [
        {"name": "staging", "kind": "staging", "target": "kubernetes"},
        {"name": "production", "kind": "production", "target": "kubernetes"},
    ]
    return load_settings(**{"state_dir": tmp_path / ".mlops", "environments": envs, **overrides})


# -- documents ------------------------------------------------------------------------------


def test_one_application_per_environment_staging_automated_production_manual(tmp_path):
    settings = settings_for(tmp_path)
    staging, production = argocd.render_applications(settings)
    for doc in (staging, production):
        validate_application(doc)
    assert staging["metadata"]["name"] == "mlops-demo-staging"
    assert staging["metadata"]["namespace"] == "argocd"
    assert staging["spec"]["source"] == {
        "repoURL": str((tmp_path / ".mlops" / "gitops" / "origin.git").resolve()),
        "targetRevision": "main",
        "path": "environments/staging",
        "directory": {"recurse": False, "include": "*.yaml"},
    }
    assert staging["spec"]["destination"] == {
        "server": "https://kubernetes.default.svc",
        "namespace": "mlops-demo-staging",
    }
    assert staging["spec"]["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True}
    assert "automated" not in production["spec"]["syncPolicy"]
    assert production["spec"]["source"]["path"] == "environments/production"
    assert production["spec"]["destination"]["namespace"] == "mlops-demo-production"


def test_applications_follow_the_configured_remote_branch_and_namespaces(tmp_path):
    settings = settings_for(
        tmp_path,
        gitops={"remote": "https://git.example.com/ml/gitops.git", "branch": "live"},
        environments=[{"name": "qa", "kind": "staging", "namespace": "ml-qa"}],
    )
    (doc,) = argocd.render_applications(
        settings, argocd_namespace="gitops", destination_server="https://k8s.example:6443"
    )
    validate_application(doc)
    assert doc["metadata"]["namespace"] == "gitops"
    assert doc["spec"]["source"]["repoURL"] == "https://git.example.com/ml/gitops.git"
    assert doc["spec"]["source"]["targetRevision"] == "live"
    assert doc["spec"]["destination"] == {
        "server": "https://k8s.example:6443",
        "namespace": "ml-qa",
    }


def test_the_schema_refuses_what_argo_cd_would():
    good = argocd.render_application(
        load_settings(), load_settings().environment("staging"), argocd_namespace="argocd"
    )
    validate_application(good)
    bad = yaml.safe_load(yaml.safe_dump(good))
    bad["spec"]["syncPolicy"]["automated"]["selfheal"] = True
    with pytest.raises(jsonschema.ValidationError, match="selfheal"):
        validate_application(bad)
    del bad["spec"]["syncPolicy"]["automated"]["selfheal"]
    del bad["spec"]["project"]
    with pytest.raises(jsonschema.ValidationError, match="'project' is a required property"):
        validate_application(bad)


def test_applications_are_committed_to_the_gitops_repository(tmp_path):
    settings = settings_for(tmp_path)
    repo = GitOpsRepo.from_settings(settings)
    docs = argocd.render_applications(settings)
    sha = argocd.write_applications(repo, docs, actor="alice")
    assert sha is not None
    assert argocd.write_applications(repo, docs, actor="alice") is None  # unchanged
    text = repo.read_file("main", "argocd/staging.yaml")
    validate_application(yaml.safe_load(text))
    assert yaml.safe_load(text) == docs[0]
    assert repo.read("staging") == []  # deployments are read from environments/ only
    assert repo.history(path="argocd/production.yaml")[0].trailers["Actor"] == "alice"


# -- the cluster ----------------------------------------------------------------------------


@pytest.fixture
def emulator(tmp_path, monkeypatch):
    with KubeEmulator() as emu:
        monkeypatch.setenv("KUBECONFIG", str(emu.write_kubeconfig(tmp_path / "kubeconfig")))
        monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
        ensure_namespace(emu, "argocd")
        yield emu


def test_applications_are_applied_and_reapplied_in_place(tmp_path, emulator):
    docs = argocd.render_applications(settings_for(tmp_path))
    cluster = Cluster(KubernetesSettings())
    try:
        assert argocd.apply_applications(cluster, docs) == [
            "mlops-demo-staging",
            "mlops-demo-production",
        ]
        stored = emulator.get(ARGOCD_APPLICATIONS, "argocd", "mlops-demo-staging")
        validate_application(stored)
        version = stored["metadata"]["resourceVersion"]
        argocd.apply_applications(cluster, docs)
        again = emulator.get(ARGOCD_APPLICATIONS, "argocd", "mlops-demo-staging")
        assert again["metadata"]["resourceVersion"] == version
    finally:
        cluster.close()


def test_a_cluster_without_argo_cd_names_what_to_install(tmp_path, monkeypatch):
    with KubeEmulator(crds=SELDON_V1) as emu:
        monkeypatch.setenv("KUBECONFIG", str(emu.write_kubeconfig(tmp_path / "kc")))
        cluster = Cluster(KubernetesSettings())
        with pytest.raises(
            TargetError, match="^Application CRD not found in the cluster"
        ) as caught:
            argocd.apply_applications(cluster, argocd.render_applications(settings_for(tmp_path)))
        cluster.close()
    assert "install Argo CD (kubectl create namespace argocd" in str(caught.value)


# -- environments.setup for Kubernetes (notebook 01) -----------------------------------------


@pytest.fixture(scope="module")
def registry_uri(tmp_path_factory):
    # One registry for the module, its schema made beforehand: making it costs seconds.
    return f"sqlite:///{seeded_registry(tmp_path_factory.mktemp('registry'))}"


def test_setup_creates_namespaces_checks_seldon_and_applies_applications(
    tmp_path, emulator, registry_uri
):
    project = environments.load_project(
        write_project(tmp_path),
        "kubernetes",
        state_dir=tmp_path / ".mlops",
        registry_uri=registry_uri,
    )
    report = environments.setup(project, "kubernetes", apply_argocd=True)
    assert report.ok, report.table()
    checks = {c.name: c.detail for c in report.checks}
    assert checks["kubernetes cluster"].startswith("v1.31.0-emulator at http://127.0.0.1:")
    assert checks["Seldon Core CRDs"] == "SeldonDeployment (machinelearning.seldon.io/v1) served"
    assert checks["namespace staging"] == "mlops-demo-staging (created)"
    assert "argocd/staging.yaml, argocd/production.yaml committed" in checks["Argo CD Applications"]
    assert "set gitops.remote" in checks["Argo CD Applications"]
    assert checks["Argo CD"] == "applied mlops-demo-staging, mlops-demo-production in 'argocd'"
    namespace = emulator.get(NAMESPACES, None, "mlops-demo-production")
    assert namespace["metadata"]["labels"]["mlops-kit.io/environment"] == "production"
    for name in ("mlops-demo-staging", "mlops-demo-production"):
        validate_application(emulator.get(ARGOCD_APPLICATIONS, "argocd", name))
    table = report.applications_table()
    assert list(table["sync"]) == ["automated (prune, selfHeal)", "manual"]
    assert list(report.environments_table()["namespace"]) == [
        "mlops-demo-staging",
        "mlops-demo-production",
    ]

    again = environments.setup(project, "kubernetes", apply_argocd=True)
    checks = {c.name: c.detail for c in again.checks}
    assert checks["namespace staging"] == "mlops-demo-staging (exists)"
    assert checks["Argo CD Applications"].startswith(
        "argocd/staging.yaml, argocd/production.yaml unchanged"
    )


def test_setup_without_seldon_or_argo_cd_says_what_to_install(tmp_path, monkeypatch, registry_uri):
    with KubeEmulator(crds=()) as emu:
        monkeypatch.setenv("KUBECONFIG", str(emu.write_kubeconfig(tmp_path / "kc")))
        project = environments.load_project(
            write_project(tmp_path), state_dir=tmp_path / "s", registry_uri=registry_uri
        )
        report = environments.setup(project, "kubernetes", apply_argocd=True)
    with pytest.raises(ConfigError) as caught:
        report.raise_for_failure()
    message = str(caught.value)
    assert message.startswith(
        "set-up failed: Seldon Core CRDs: SeldonDeployment CRD not found in the cluster"
    )
    assert "install Seldon Core v1 (helm install seldon-core seldon-core-operator" in message
    assert "Argo CD: Application CRD not found in the cluster" in message


def test_setup_without_any_cluster_says_so_in_one_line(tmp_path, monkeypatch, registry_uri):
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "none"))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    project = environments.load_project(
        write_project(tmp_path), state_dir=tmp_path / "s", registry_uri=registry_uri
    )
    report = environments.setup(project, "kubernetes")
    with pytest.raises(ConfigError, match=r"^set-up failed: kubernetes cluster: no Kubernetes "):
        report.raise_for_failure()
    assert [c.name for c in report.checks] == [
        "state directory",
        "model registry",
        "kubernetes cluster",
    ]


def test_load_project_overrides_every_environments_target(tmp_path):
    configured = environments.load_project(None, state_dir=tmp_path / "s")
    assert {e.target for e in configured.settings.environments} == {"local"}
    overridden = environments.load_project(None, "kubernetes", state_dir=tmp_path / "s")
    assert {e.target for e in overridden.settings.environments} == {"kubernetes"}
    assert overridden.state_dir == configured.state_dir
    with pytest.raises(ParameterError, match="'kubernets' is not one of"):
        environments.load_project(None, "kubernets", state_dir=tmp_path / "s")

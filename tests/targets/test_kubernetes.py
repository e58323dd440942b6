"""The Kubernetes target against a stateful loopback API emulator, through the real client."""

from __future__ import annotations

import importlib
import os
import sys
import time
from pathlib import Path

import pytest
import yaml

from mlops_kit import targets
from mlops_kit.deployment import DeploymentSpec
from mlops_kit.errors import ConfigError, DeploymentTimeout, MissingDependencyError, TargetError
from mlops_kit.gitops import manifests
from mlops_kit.settings import KubernetesSettings, Settings, load_settings
from mlops_kit.targets.kubernetes import (
    Cluster,
    KubernetesTarget,
    cluster_settings,
    namespace_manifest,
    readiness,
)
from tests.support import write_project
from tests.support.crds import validate
from tests.support.k8s_emulator import (
    SELDON_DEPLOYMENTS,
    SELDON_EXPERIMENTS,
    SELDON_MODELS,
    KubeEmulator,
    PlayOperator,
    ensure_namespace,
    entry_point_path,
    v1_status,
)
from tests.support.specs import SPECS

NS = "mlops-demo-staging"
FAST = {"poll_interval": 0.02, "ingress_url": "http://ingress.example:8080"}


def k8s_settings(tmp_path: Path, fmt: str = "seldon-v1") -> Settings:
    envs = [
        {"name": "staging", "kind": "staging", "target": "kubernetes"},
        {"name": "production", "kind": "production", "target": "kubernetes"},
    ]
    return load_settings(
        write_project(tmp_path),
        state_dir=tmp_path / ".mlops",
        gitops={"manifest": fmt},
        environments=envs,
    )


def spec(version: str = "1", **fields) -> DeploymentSpec:
    base = {
        "environment": "staging",
        "model_name": "wine-classifier",
        "version": version,
        "model_uri": f"s3://models/wine-classifier/{version}",
        "run_id": f"run{version}",
    }
    return DeploymentSpec(**{**base, **fields})


@pytest.fixture
def emulator(tmp_path, monkeypatch):
    with KubeEmulator() as emu:
        monkeypatch.setenv("KUBECONFIG", str(emu.write_kubeconfig(tmp_path / "kubeconfig")))
        monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
        ensure_namespace(emu, NS)
        yield emu


@pytest.fixture
def operator(emulator):
    with PlayOperator(emulator) as op:
        yield op


def make_target(tmp_path, fmt="seldon-v1", env="staging", **config) -> KubernetesTarget:
    settings = k8s_settings(tmp_path, fmt)
    return KubernetesTarget(
        settings, settings.environment(env), config=KubernetesSettings(**{**FAST, **config})
    )


@pytest.fixture
def target(tmp_path, emulator):
    with make_target(tmp_path) as t:
        yield t


# -- documents ----------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["seldon-v1", "seldon-v2"])
@pytest.mark.parametrize("flavour", list(SPECS))
def test_every_object_applied_validates_against_the_crd(tmp_path, emulator, operator, fmt, flavour):
    chosen = SPECS[flavour].model_copy(update={"environment": "staging", "traffic": 100})
    with make_target(tmp_path, fmt) as target:
        status = target.apply(chosen, timeout=10)
    assert status.ready and status.version == chosen.version
    kind = SELDON_DEPLOYMENTS if fmt == "seldon-v1" else SELDON_MODELS
    stored = emulator.get(kind, NS, chosen.model_name)
    # The object as the cluster holds it (server fields and the operator's status included).
    validate(stored)
    # The same document as the GitOps repository holds, plus the namespace.
    sent = manifests.render(chosen, fmt)
    assert {k: stored[k] for k in sent if k != "metadata"} == {
        k: v for k, v in sent.items() if k != "metadata"
    }
    assert stored["metadata"]["labels"] == sent["metadata"]["labels"]
    assert stored["metadata"]["annotations"] == sent["metadata"]["annotations"]
    assert manifests.spec_from_manifest(stored) == chosen


@pytest.mark.parametrize("fmt", ["seldon-v1", "seldon-v2"])
def test_a_model_in_s3_is_applied_with_its_storage_secret(tmp_path, emulator, operator, fmt):
    chosen = spec("2", storage_secret="mlops-kit-s3")
    with make_target(tmp_path, fmt) as target:
        status = target.apply(chosen, timeout=10)
    assert status.ready and status.version == "2"
    kind = SELDON_DEPLOYMENTS if fmt == "seldon-v1" else SELDON_MODELS
    stored = emulator.get(kind, NS, chosen.model_name)
    validate(stored)
    assert manifests.spec_from_manifest(stored) == chosen


def test_namespace_document_is_a_valid_core_object():
    import kubernetes_validate

    doc = namespace_manifest(NS, {"mlops-kit.io/environment": "staging"})
    kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)


# -- apply / status / list / delete --------------------------------------------------------


def test_apply_waits_until_available_and_reapplying_changes_nothing(target, emulator, operator):
    status = target.apply(spec("1"))
    assert (status.ready, status.version) == (True, "1")
    assert status.endpoint == (
        f"http://ingress.example:8080/seldon/{NS}/wine-classifier/v2/models/wine-classifier"
    )
    stored = emulator.get(SELDON_DEPLOYMENTS, NS, "wine-classifier")
    assert stored["metadata"]["generation"] == 1
    assert stored["status"]["state"] == "Available"
    version_before = stored["metadata"]["resourceVersion"]

    began = time.monotonic()
    again = target.apply(spec("1"))
    assert again.ready and again.version == "1"
    assert time.monotonic() - began < 1.0
    stored = emulator.get(SELDON_DEPLOYMENTS, NS, "wine-classifier")
    assert stored["metadata"]["resourceVersion"] == version_before  # nothing changed
    assert len(operator.reconciled) == 1

    updated = target.apply(spec("2"))
    assert (updated.ready, updated.version) == (True, "2")
    stored = emulator.get(SELDON_DEPLOYMENTS, NS, "wine-classifier")
    assert stored["metadata"]["generation"] == 2
    assert stored["spec"]["predictors"][0]["name"] == "v2"
    assert [r[3] for r in operator.reconciled] == [1, 2]
    # Applied with server-side apply, by our field manager.
    patches = [p for m, p in emulator.requests if m == "PATCH"]
    assert patches and all(p.endswith("/seldondeployments/wine-classifier") for p in patches)


def test_a_stale_available_status_is_not_taken_for_the_new_version(tmp_path, emulator):
    with PlayOperator(emulator, delay=0.3), make_target(tmp_path) as target:
        target.apply(spec("1"), timeout=10)
        began = time.monotonic()
        status = target.apply(spec("2"), timeout=10)
    # Right after the update the status still said Available (for generation 1).
    assert time.monotonic() - began >= 0.3
    assert status.version == "2"


def test_status_and_list_report_what_the_cluster_says(target, emulator, operator):
    assert target.status("wine-classifier") is None
    assert target.list() == []
    target.apply(spec("3"))
    (listed,) = target.list()
    assert (listed.model_name, listed.version, listed.ready) == ("wine-classifier", "3", True)
    obj = emulator.get(SELDON_DEPLOYMENTS, NS, "wine-classifier")
    emulator.set_status(SELDON_DEPLOYMENTS, NS, "wine-classifier", v1_status(obj, "Creating"))
    status = target.status("wine-classifier")
    assert (status.ready, status.version) == (False, None)
    assert "state Creating" in status.detail


def test_objects_of_others_are_not_listed(target, emulator, operator):
    target.apply(spec("1"))
    foreign = manifests.render(spec("1", model_name="theirs"), "seldon-v1", NS)
    foreign["metadata"]["labels"] = {"team": "other"}
    target.cluster.apply(target.crd, foreign, NS)
    assert [s.model_name for s in target.list()] == ["wine-classifier"]


def test_delete_is_idempotent(target, emulator, operator):
    target.apply(spec("1"))
    target.delete("wine-classifier")
    assert emulator.get(SELDON_DEPLOYMENTS, NS, "wine-classifier") is None
    assert target.status("wine-classifier") is None
    target.delete("wine-classifier")
    target.delete("never-deployed")


def test_endpoint_needs_a_deployment_and_an_ingress(tmp_path, emulator, operator):
    with make_target(tmp_path, ingress_url=None) as target:
        with pytest.raises(TargetError, match="not deployed in namespace"):
            target.endpoint("wine-classifier")
        status = target.apply(spec("1"))
        assert status.endpoint is None
        with pytest.raises(TargetError, match="MLOPS_KIT_KUBERNETES__INGRESS_URL"):
            target.endpoint("wine-classifier")
    with make_target(tmp_path, ingress_path="/models/{namespace}/{model}") as target:
        assert target.endpoint("wine-classifier") == (
            f"http://ingress.example:8080/models/{NS}/wine-classifier"
        )


def test_sync_applies_the_gitops_repository_unchanged(tmp_path, emulator, operator):
    from mlops_kit.gitops.repository import GitOpsRepo
    from mlops_kit.gitops.sync import sync
    from mlops_kit.project import Project

    project = Project(k8s_settings(tmp_path))
    repo = GitOpsRepo.from_settings(project.settings)
    repo.ensure()
    repo.write(spec("4"), actor="alice")
    with make_target(tmp_path) as target:
        report = sync(project, "staging", repo=repo, target=target)
        assert [(a.kind, a.version) for a in report.actions] == [("create", "4")]
        assert not sync(project, "staging", repo=repo, target=target).changed
        committed = yaml.safe_load(
            repo.read_file("main", "environments/staging/wine-classifier.yaml")
        )
        stored = emulator.get(SELDON_DEPLOYMENTS, NS, "wine-classifier")
        assert stored["spec"] == committed["spec"]
        assert committed["metadata"].keys() == {"name", "labels", "annotations"}  # no namespace
        repo.remove("staging", "wine-classifier", actor="alice")
        report = sync(project, "staging", repo=repo, target=target)
        assert [a.kind for a in report.actions] == ["delete"]
    assert emulator.get(SELDON_DEPLOYMENTS, NS, "wine-classifier") is None


# -- Seldon Core v2 -------------------------------------------------------------------------


def test_seldon_v2_model_then_canary_then_promotion(tmp_path, emulator, operator):
    with make_target(tmp_path, "seldon-v2") as target:
        status = target.apply(spec("1"))
        assert (status.ready, status.version) == (True, "1")
        assert status.endpoint == "http://ingress.example:8080/v2/models/wine-classifier"

        canary = target.apply(spec("2", traffic=25))
        assert canary.ready and canary.version == "2"
        assert "canary v2 at 25%, stable v1 at 75%" in canary.detail
        experiment = emulator.get(SELDON_EXPERIMENTS, NS, "wine-classifier")
        assert experiment["spec"] == {
            "default": "wine-classifier",
            "candidates": [
                {"name": "wine-classifier", "weight": 75},
                {"name": "wine-classifier-canary", "weight": 25},
            ],
        }
        canary_model = emulator.get(SELDON_MODELS, NS, "wine-classifier-canary")
        for doc in (experiment, canary_model, emulator.get(SELDON_MODELS, NS, "wine-classifier")):
            validate(doc)
        assert [s.model_name for s in target.list()] == ["wine-classifier"]
        assert target.apply(spec("2", traffic=25)).version == "2"  # idempotent

        promoted = target.apply(spec("2"))
        assert promoted.version == "2" and "canary" not in promoted.detail
        assert emulator.get(SELDON_EXPERIMENTS, NS, "wine-classifier") is None
        assert emulator.get(SELDON_MODELS, NS, "wine-classifier-canary") is None
        target.delete("wine-classifier")
        assert emulator.list(SELDON_MODELS) == []


def test_a_canary_needs_a_stable_version(tmp_path, emulator, operator):
    with (
        make_target(tmp_path, "seldon-v2") as target,
        pytest.raises(TargetError, match="needs a ready stable version"),
    ):
        target.apply(spec("2", traffic=10))


# -- failures -------------------------------------------------------------------------------


def test_timeout_raises_deployment_timeout_with_the_last_status(target, emulator):
    began = time.monotonic()
    with pytest.raises(DeploymentTimeout) as caught:
        target.apply(spec("1"), timeout=0.3)
    assert time.monotonic() - began < 3
    message = str(caught.value)
    assert f"SeldonDeployment {NS}/wine-classifier version 1 was not ready in time" in message
    assert "state not reported yet" in message
    assert "kubectl describe seldondeployments.machinelearning.seldon.io" in message


def test_a_failed_deployment_fails_at_once_with_seldons_reason(tmp_path, emulator):
    with (
        PlayOperator(emulator, fail=True),
        make_target(tmp_path) as target,
        pytest.raises(TargetError, match="insufficient memory") as caught,
    ):
        target.apply(spec("1"), timeout=30)
    assert not isinstance(caught.value, DeploymentTimeout)


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        (
            "seldon-v1",
            "SeldonDeployment CRD not found in the cluster (seldondeployments.machinelearning"
            ".seldon.io v1 is not served): install Seldon Core v1 (helm install seldon-core "
            "seldon-core-operator",
        ),
        ("seldon-v2", "Model CRD not found in the cluster (models.mlops.seldon.io v1alpha1"),
    ],
)
def test_a_missing_crd_names_what_to_install(tmp_path, monkeypatch, fmt, expected):
    with KubeEmulator(crds=()) as emu:
        monkeypatch.setenv("KUBECONFIG", str(emu.write_kubeconfig(tmp_path / "kc")))
        ensure_namespace(emu, NS)
        with make_target(tmp_path, fmt) as target:
            for call in (lambda: target.apply(spec("1")), target.list):
                with pytest.raises(TargetError) as caught:
                    call()
                assert str(caught.value).startswith(expected)
            other = "seldon-v2 with Seldon Core v2" if fmt == "seldon-v1" else "seldon-v1 with"
            assert other in str(caught.value)
            # Installing the CRD later is noticed without reconnecting.
            emu.install(SELDON_DEPLOYMENTS if fmt == "seldon-v1" else SELDON_MODELS)
            target.cluster.forget_discovery()
            assert target.list() == []


def test_rbac_refusal_names_verb_resource_and_namespace(target, emulator):
    emulator.deny("patch", "seldondeployments", NS)
    with pytest.raises(TargetError) as caught:
        target.apply(spec("1"))
    message = str(caught.value)
    assert message.startswith(
        f"RBAC: not allowed to patch seldondeployments.machinelearning.seldon.io in namespace "
        f"'{NS}'"
    )
    assert 'User "system:serviceaccount:ci:mlops-kit" cannot patch' in message
    emulator.allow_all()
    emulator.deny("list", "seldondeployments")
    with pytest.raises(TargetError, match="RBAC: not allowed to list seldondeployments"):
        target.list()


def test_a_missing_namespace_says_how_to_create_it(tmp_path, emulator):
    with (
        make_target(tmp_path, env="production") as target,
        pytest.raises(TargetError, match="namespace 'mlops-demo-production' does not exist"),
    ):
        target.apply(spec("1", environment="production"))


def test_no_kubeconfig_at_all(tmp_path, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with (
        make_target(tmp_path) as target,
        pytest.raises(TargetError, match="^no Kubernetes cluster configured: set KUBECONFIG"),
    ):
        target.list()


def test_an_unreachable_cluster(tmp_path, monkeypatch):
    with KubeEmulator() as emu:
        path = emu.write_kubeconfig(tmp_path / "kc")
        url = emu.url
    monkeypatch.setenv("KUBECONFIG", str(path))
    with (
        make_target(tmp_path) as target,
        pytest.raises(TargetError, match=f"cannot reach the Kubernetes API server at {url}"),
    ):
        target.status("wine-classifier")


def test_an_unknown_context_lists_the_known_ones(tmp_path, emulator):
    with (
        make_target(tmp_path, context="prod-cluster") as target,
        pytest.raises(TargetError, match="the file has: emulator"),
    ):
        target.list()


def test_refused_credentials(tmp_path, emulator, monkeypatch):
    bad = emulator.write_kubeconfig(tmp_path / "bad", token="expired")
    monkeypatch.setenv("KUBECONFIG", str(bad))
    with (
        make_target(tmp_path) as target,
        pytest.raises(TargetError, match=r"refused the credentials \(401\)"),
    ):
        target.list()


def test_spec_of_another_environment_is_refused(target):
    with pytest.raises(TargetError, match="belongs to environment 'production'"):
        target.apply(spec("1", environment="production"))


def test_missing_kubernetes_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "kubernetes", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'mlops-kit\[kubernetes\]'"):
        Cluster(KubernetesSettings()).version()


# -- configuration and discovery by name ------------------------------------------------------


def test_options_come_from_kubernetes_variables(tmp_path, monkeypatch):
    monkeypatch.setenv("MLOPS_KIT_KUBERNETES__INGRESS_URL", "http://gateway")
    monkeypatch.setenv("MLOPS_KIT_KUBERNETES__CONTEXT", "kind-ci")
    monkeypatch.setenv("MLOPS_KIT_KUBERNETES__POLL_INTERVAL", "0.5")
    settings = k8s_settings(tmp_path)  # the variables do not upset the settings
    config = cluster_settings(settings, settings.environment("staging"))
    assert (config.ingress_url, config.context, config.poll_interval) == (
        "http://gateway",
        "kind-ci",
        0.5,
    )
    assert config.argocd_namespace == "argocd"
    monkeypatch.setenv("MLOPS_KIT_KUBERNETES__READY_TIMEOUT", "soon")
    with pytest.raises(ConfigError, match="kubernetes.ready_timeout"):
        k8s_settings(tmp_path)


def test_an_environment_s_own_context_wins_over_the_kubernetes_section(tmp_path, monkeypatch):
    monkeypatch.setenv("MLOPS_KIT_KUBERNETES__CONTEXT", "shared")
    envs = [
        {"name": "staging", "kind": "staging", "target": "kubernetes"},
        {"name": "production", "kind": "production", "context": "prod-cluster"},
    ]
    settings = load_settings(
        state_dir=tmp_path / ".mlops",
        environments=envs,
        kubernetes={"kubeconfig": "/etc/kube/config", "argocd_namespace": "gitops"},
    )
    production = cluster_settings(settings, settings.environment("production"))
    assert production == KubernetesSettings(
        kubeconfig=Path("/etc/kube/config"), context="prod-cluster", argocd_namespace="gitops"
    )
    assert cluster_settings(settings, settings.environment("staging")) is settings.kubernetes
    assert settings.kubernetes.context == "shared"


def test_the_target_is_found_by_name_through_its_entry_point(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(entry_point_path(tmp_path / "ep")))
    importlib.invalidate_caches()
    monkeypatch.delitem(targets._registry, "kubernetes", raising=False)
    assert "kubernetes" in targets.names()
    assert targets.get("kubernetes") is KubernetesTarget
    settings = k8s_settings(tmp_path)
    with targets.for_environment(settings, "production") as target:
        assert isinstance(target, KubernetesTarget)
        assert target.namespace == "mlops-demo-production"


def test_the_emulator_answers_like_an_api_server(emulator):
    """The behaviours the target relies on, seen through the official client."""
    from kubernetes import client, config

    api = config.new_client_from_config(config_file=os.environ["KUBECONFIG"])
    objects = client.CustomObjectsApi(api)
    args = ("machinelearning.seldon.io", "v1", NS, "seldondeployments")
    doc = manifests.render(spec("1"), "seldon-v1", NS)
    objects.create_namespaced_custom_object(*args, doc)
    with pytest.raises(client.ApiException) as conflict:
        objects.create_namespaced_custom_object(*args, doc)
    assert conflict.value.status == 409
    # The status subresource changes status only, and no generation.
    objects.patch_namespaced_custom_object_status(
        *args, "wine-classifier", {"status": {"state": "Creating"}, "spec": {"replicas": 9}}
    )
    stored = objects.get_namespaced_custom_object(*args, "wine-classifier")
    assert (stored["status"], stored["metadata"]["generation"]) == ({"state": "Creating"}, 1)
    assert "replicas" not in stored["spec"]
    # Server-side apply by one manager drops what it no longer sets.
    applied = manifests.render(spec("1"), "seldon-v1", NS)
    applied["metadata"]["labels"]["extra"] = "yes"
    for body in (applied, doc):
        stored = objects.patch_namespaced_custom_object(
            *args,
            "wine-classifier",
            body,
            field_manager="t",
            _content_type="application/apply-patch+yaml",
        )
    assert "extra" not in stored["metadata"]["labels"]
    with pytest.raises(client.ApiException) as unsupported:
        objects.patch_namespaced_custom_object(
            *args,
            "wine-classifier",
            {"spec": {}},
            _content_type="application/strategic-merge-patch+json",
        )
    assert unsupported.value.status == 415
    api.close()


@pytest.mark.parametrize(
    ("doc", "version", "ready", "detail"),
    [
        ({"kind": "SeldonDeployment", "status": {"state": "Available"}}, None, True, "Available"),
        ({"kind": "SeldonDeployment"}, None, False, "state not reported yet"),
        (
            {
                "kind": "SeldonDeployment",
                "metadata": {"generation": 3},
                "status": {"state": "Available", "observedGeneration": 2},
            },
            None,
            False,
            "has not processed generation 3",
        ),
        (
            {
                "kind": "SeldonDeployment",
                "metadata": {"annotations": {manifests.VERSION_ANNOTATION: "4"}},
                "status": {"state": "Available"},
            },
            "5",
            False,
            "holds version 4, not 5",
        ),
        ({"kind": "Model", "status": {"conditions": []}}, None, False, "no Ready condition"),
        (
            {"kind": "Model", "status": {"conditions": [{"type": "Ready", "status": "True"}]}},
            None,
            True,
            "Ready",
        ),
        (
            {
                "kind": "Model",
                "status": {
                    "conditions": [{"type": "Ready", "status": "False", "message": "no server"}]
                },
            },
            None,
            False,
            "Ready is False: no server",
        ),
    ],
)
def test_readiness(doc, version, ready, detail):
    state = readiness(doc, version)
    assert state.ready is ready
    assert detail in state.detail

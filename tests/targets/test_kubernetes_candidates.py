"""A spec's candidate on Kubernetes: rendered for Seldon v1 / v2, read back, moved by GitOps
commits on the loopback API emulator, and the PromQL that judges it over Seldon's metrics."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mlops_kit.deployment import Candidate, DeploymentSpec
from mlops_kit.errors import ConfigError, UnsupportedSpec
from mlops_kit.gitops import candidates, manifests
from mlops_kit.settings import KubernetesSettings, Settings, load_settings
from mlops_kit.targets.kubernetes import KubernetesTarget
from tests.support import write_project
from tests.support.crds import validate
from tests.support.k8s_emulator import (
    SELDON_DEPLOYMENTS,
    SELDON_EXPERIMENTS,
    SELDON_MODELS,
    KubeEmulator,
    PlayOperator,
    ensure_namespace,
)

NS = "mlops-demo-staging"
FAST = {"poll_interval": 0.02, "ingress_url": "http://ingress.example:8080"}
PATH = "environments/staging/wine-classifier.yaml"


def stable(**fields) -> DeploymentSpec:
    base = {
        "environment": "staging",
        "model_name": "wine-classifier",
        "version": "1",
        "model_uri": "s3://models/wine-classifier/1",
        "run_id": "run1",
    }
    return DeploymentSpec(**{**base, **fields})


def with_candidate(weight: int = 10, **fields) -> DeploymentSpec:
    candidate = Candidate(
        version="2", model_uri="s3://models/wine-classifier/2", run_id="run2", weight=weight,
        **fields,
    )  # fmt: skip
    return stable(candidate=candidate)


CANDIDATES = {
    "canary": with_candidate(10),
    "aborted": with_candidate(0),
    "all": with_candidate(100),
    "shadow": with_candidate(0, mirror=True, mirror_percent=30),
    "sticky": with_candidate(50, sticky_header="x-user"),
}


# -- documents ------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["seldon-v1", "seldon-v2", "sagemaker"])
@pytest.mark.parametrize("case", list(CANDIDATES))
def test_a_candidate_round_trips_through_every_document_format(fmt, case):
    spec = CANDIDATES[case]
    doc = manifests.render(spec, fmt)
    if fmt != "sagemaker":
        validate(doc)  # against the vendored CRDs
    assert manifests.spec_from_manifest(manifests.load(manifests.dump(doc))) == spec


def test_seldon_v1_splits_traffic_across_two_predictors_labelled_by_version():
    predictors = manifests.render(with_candidate(10), "seldon-v1")["spec"]["predictors"]
    assert [(p["name"], p["traffic"], p["labels"]) for p in predictors] == [
        ("v1", 90, {"version": "1"}),
        ("v2", 10, {"version": "2"}),
    ]
    assert predictors[1]["graph"]["modelUri"] == "s3://models/wine-classifier/2"
    shadow = manifests.render(CANDIDATES["shadow"], "seldon-v1")["spec"]["predictors"]
    assert [(p["traffic"], p.get("shadow", False)) for p in shadow] == [(100, False), (0, True)]


def test_the_body_wins_over_the_annotation():
    doc = manifests.render(with_candidate(10), "seldon-v1")
    doc["spec"]["predictors"][0]["traffic"], doc["spec"]["predictors"][1]["traffic"] = 60, 40
    assert manifests.spec_from_manifest(doc).candidate.weight == 40
    del doc["spec"]["predictors"][1]
    with pytest.raises(ConfigError, match="candidate's predictor 'v2' is missing"):
        manifests.spec_from_manifest(doc)


def test_seldon_v2_objects_split_or_mirror():
    model, experiment = candidates.candidate_objects(with_candidate(10), NS)
    assert model["metadata"]["name"] == "wine-classifier-canary"
    assert manifests.spec_from_manifest(model).version == "2"
    assert experiment["spec"] == {
        "default": "wine-classifier",
        "candidates": [
            {"name": "wine-classifier", "weight": 90},
            {"name": "wine-classifier-canary", "weight": 10},
        ],
    }
    _, mirrored = candidates.candidate_objects(CANDIDATES["shadow"], NS)
    assert mirrored["spec"]["candidates"] == [{"name": "wine-classifier", "weight": 100}]
    assert mirrored["spec"]["mirror"] == {"name": "wine-classifier-canary", "percent": 30}
    for doc in (model, experiment, mirrored):
        validate(doc)


def test_a_candidate_of_the_stable_version_is_refused():
    spec = stable(candidate=Candidate(version="1", model_uri="s3://x", weight=10))
    with pytest.raises(ConfigError, match="candidate is the stable version"):
        manifests.render(spec, "seldon-v1")


# -- a canary through GitOps commits on the emulator ---------------------------------------------


def k8s_settings(tmp_path: Path, fmt: str) -> Settings:
    envs = [
        {"name": "staging", "kind": "staging", "target": "kubernetes"},
        {"name": "production", "kind": "production", "target": "kubernetes"},
    ]
    return load_settings(
        write_project(tmp_path), state_dir=tmp_path / ".mlops", gitops={"manifest": fmt},
        environments=envs,
    )  # fmt: skip


@pytest.fixture
def emulator(tmp_path, monkeypatch):
    with KubeEmulator() as emu:
        monkeypatch.setenv("KUBECONFIG", str(emu.write_kubeconfig(tmp_path / "kubeconfig")))
        monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
        ensure_namespace(emu, NS)
        with PlayOperator(emu):
            yield emu


def _canary(tmp_path, fmt, observe):
    """Stable v1, then the candidate at 10, 50, 100 % and promoted: one commit and sync each."""
    from mlops_kit.gitops.repository import GitOpsRepo
    from mlops_kit.gitops.sync import sync
    from mlops_kit.project import Project

    project = Project(k8s_settings(tmp_path, fmt))
    repo = GitOpsRepo.from_settings(project.settings)
    repo.ensure()
    settings = project.settings
    config = KubernetesSettings(**FAST)
    with KubernetesTarget(settings, settings.environment("staging"), config=config) as target:
        for step in (None, 10, 50, 100, "promoted"):
            if step is None:
                spec = stable()
            elif step == "promoted":
                spec = stable(version="2", model_uri="s3://models/wine-classifier/2", run_id="run2")
            else:
                spec = with_candidate(step)
            repo.write(spec, actor="rollout")
            report = sync(project, "staging", repo=repo, target=target)
            assert report.changed, step
            assert not sync(project, "staging", repo=repo, target=target).changed
            committed = yaml.safe_load(repo.read_file("main", PATH))
            assert manifests.spec_from_manifest(committed) == spec
            status = target.status("wine-classifier")
            assert status.ready and status.candidate == spec.candidate
            observe(step, committed, status)


def test_a_canary_10_50_100_through_gitops_on_seldon_v1(tmp_path, emulator):
    seen = []

    def observe(step, committed, status):
        weights = [(p["name"], p["traffic"]) for p in committed["spec"]["predictors"]]
        stored = emulator.get(SELDON_DEPLOYMENTS, NS, "wine-classifier")
        assert [(p["name"], p["traffic"]) for p in stored["spec"]["predictors"]] == weights
        validate(stored)
        seen.append((step, weights, status.version))
        if isinstance(step, int):
            assert f"v2 at {step}%: ready" in status.detail  # per-version readiness

    _canary(tmp_path, "seldon-v1", observe)
    assert seen == [
        (None, [("v1", 100)], "1"),
        (10, [("v1", 90), ("v2", 10)], "1"),
        (50, [("v1", 50), ("v2", 50)], "1"),
        (100, [("v1", 0), ("v2", 100)], "1"),
        ("promoted", [("v2", 100)], "2"),
    ]


def test_a_canary_10_50_100_through_gitops_on_seldon_v2(tmp_path, emulator):
    seen = []

    def observe(step, committed, status):
        experiment = emulator.get(SELDON_EXPERIMENTS, NS, "wine-classifier")
        weights = experiment and [
            (c["name"], c["weight"]) for c in experiment["spec"]["candidates"]
        ]
        annotation = committed["metadata"]["annotations"].get(candidates.CANDIDATE_ANNOTATION)
        seen.append((step, weights, annotation and yaml.safe_load(annotation)["weight"]))
        if experiment is not None:
            validate(experiment)
            assert f"canary v2 at {step}%" in status.detail

    _canary(tmp_path, "seldon-v2", observe)
    canary = "wine-classifier-canary"
    assert seen == [
        (None, None, None),
        (10, [("wine-classifier", 90), (canary, 10)], 10),
        (50, [("wine-classifier", 50), (canary, 50)], 50),
        (100, [("wine-classifier", 0), (canary, 100)], 100),
        ("promoted", None, None),
    ]
    assert emulator.get(SELDON_MODELS, NS, canary) is None


def test_a_shadow_on_seldon_v1_and_v2(tmp_path, emulator):
    settings = k8s_settings(tmp_path, "seldon-v2")
    config = KubernetesSettings(**FAST)
    with KubernetesTarget(settings, settings.environment("staging"), config=config) as target:
        target.apply(stable())
        status = target.apply(CANDIDATES["shadow"])
        assert status.version == "1" and "a 30% mirror" in status.detail
        mirror = emulator.get(SELDON_EXPERIMENTS, NS, "wine-classifier")["spec"]["mirror"]
        assert mirror == {"name": "wine-classifier-canary", "percent": 30}
        assert target.apply(stable()).candidate is None  # rolled back: the shadow is gone
        assert emulator.get(SELDON_EXPERIMENTS, NS, "wine-classifier") is None
    settings = k8s_settings(tmp_path / "v1", "seldon-v1")
    with KubernetesTarget(settings, settings.environment("staging"), config=config) as target:
        # A v1 shadow predictor sees every request: a share of them is refused, not ignored.
        with pytest.raises(UnsupportedSpec, match="mirror_percent=30: a seldon-v1 shadow"):
            target.apply(CANDIDATES["shadow"])
        with pytest.raises(UnsupportedSpec, match="cannot pin a caller to one version"):
            target.apply(CANDIDATES["sticky"])
        whole = with_candidate(0, mirror=True, mirror_percent=100)
        status = target.apply(whole)
        assert status.candidate == whole.candidate and "v2 shadow" in status.detail
        stored = emulator.get(SELDON_DEPLOYMENTS, NS, "wine-classifier")
        assert stored["spec"]["predictors"][1]["shadow"] is True

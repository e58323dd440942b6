"""A canary on the Kubernetes target, through the real engine: an approved request moves the
SeldonDeployment's predictor weights by GitOps commits, and each step is judged on PromQL over
Seldon's executor metrics by a real Prometheus.

The cluster is the test's: the Kubernetes API emulator (reached through the real client), an
operator thread playing Seldon Core that serves each SeldonDeployment with a real MLServer
(our routing model splits the traffic by the predictors' weights), and a loopback ingress that
also plays the executor's metrics (``seldon_api_executor_server_requests_seconds``, predictors
labelled with their version), scraped by the local Prometheus the way a cluster's scrapes the
executors. ``monitor.prometheus_url`` points the analysis at it.
"""

from __future__ import annotations

import collections
import json

import pytest
import yaml

from mlops_kit.errors import PromotionFailed
from mlops_kit.gitops.deploy import deploy, smoke
from mlops_kit.gitops.repository import GitOpsRepo
from mlops_kit.process import wait_until
from mlops_kit.project import Project
from mlops_kit.promote.promotion import Promotions
from mlops_kit.registry.client import Registry
from mlops_kit.targets import for_environment
from mlops_kit.train.training import load_dataset, train_and_register, training_params
from mlops_kit.verify.monitoring import prometheus
from mlops_kit.verify.monitoring.promql import PrometheusClient
from tests.support import seeded_registry, write_project
from tests.support.k8s_emulator import (
    SELDON_DEPLOYMENTS,
    IngressProxy,
    KubeEmulator,
    PlayOperator,
    ensure_namespace,
)
from tests.support.load import Load
from tests.support.rollouts import promote, register_faulty
from tests.support.signers import demo_signers

pytestmark = pytest.mark.slow

PRODUCTION = "mlops-demo-production"
MANIFEST = "environments/production/wine-classifier.yaml"
POLICY = {"approvers": ["bob"], "four_eyes": True, "min_approvals": 1}
CANARY = {"strategy": "canary", "steps": [10, 50, 100], "bake_seconds": 3,
          "analysis": {"min_requests": 5, "max_error_rate": 0.05, "max_p99_ms": 1000,
                       "failure_limit": 1}}  # fmt: skip


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A project on the emulated cluster, v1 in production, v2 good and v3 failing in staging."""
    root = tmp_path_factory.mktemp("k8s-canary")
    with (
        pytest.MonkeyPatch.context() as mp,
        KubeEmulator() as emulator,
        IngressProxy() as ingress,
        PlayOperator(emulator, ingress=ingress, state_dir=root / "cluster") as operator,
    ):
        mp.setenv("KUBECONFIG", str(emulator.write_kubeconfig(root / "kubeconfig")))
        mp.delenv("KUBERNETES_SERVICE_HOST", raising=False)
        for namespace in ("mlops-demo-staging", PRODUCTION):
            ensure_namespace(emulator, namespace)
        envs = [
            {"name": "staging", "kind": "staging", "target": "kubernetes"},
            {"name": "production", "kind": "production", "target": "kubernetes",
             "promotes_from": "staging", "approval": POLICY, "rollout": CANARY},
        ]  # fmt: skip
        path = write_project(
            root / "project", state_dir=str(root / "state"), environments=envs,
            kubernetes={"poll_interval": 0.05, "ingress_url": ingress.url},
            monitor={"scrape_interval_s": 0.5},
        )  # fmt: skip
        seeded_registry(root / "state")  # the registry's schema is not what these are about
        project = Project.load(path)
        monitor = prometheus.start(project)
        try:
            # The executor's metrics, as the cluster's Prometheus discovers them.
            address = ingress.url.removeprefix("http://")
            prometheus.targets_file(project).write_text(
                json.dumps([{"targets": [address], "labels": {"job": "seldon-executor"}}])
            )
            project = Project.load(path, monitor={"scrape_interval_s": 0.5,
                                                  "prometheus_url": monitor.url})  # fmt: skip
            demo_signers(project)
            data = load_dataset("wine")
            versions = [train_and_register(project, data, training_params(n_estimators=n)).version
                        for n in (5, 6)]  # fmt: skip
            versions.append(register_faulty(project, data, "error"))
            for version in versions:
                deploy(project, "staging", version, actor="alice")
                smoke(project, "staging", version)
            promote(project, "1")  # the first production version: nothing to share traffic with
            yield project, data, emulator, operator, monitor
        finally:
            prometheus.stop(project)


def served(project):
    status = for_environment(project.settings, "production").status(project.model_name)
    alias = Registry(project).by_alias("production")
    return status.version, status.candidate, alias.version if alias else None


def committed_weights(project) -> list[list[tuple[str, int]]]:
    """The predictors' traffic in each committed version of the production manifest."""
    repo = GitOpsRepo.from_settings(project.settings)
    seen = []
    for commit in reversed(repo.history(environment="production", model=project.model_name)):
        document = yaml.safe_load(repo.read_file(commit.sha, MANIFEST))
        weights = [(p["name"], p["traffic"]) for p in document["spec"]["predictors"]]
        if not seen or seen[-1] != weights:
            seen.append(weights)
    return seen


def test_a_canary_moves_predictor_weights_judged_on_the_executors_promql(cluster):
    project, data, emulator, operator, monitor = cluster
    client = PrometheusClient(monitor.url)
    url = for_environment(project.settings, "production").endpoint(project.model_name)
    with Load(url, data.X_test, threads=3, max_requests=3000, pause=0.01) as load:
        series = f'seldon_api_executor_server_requests_seconds_count{{namespace="{PRODUCTION}"}}'
        wait_until(lambda: bool(client.query(series)), timeout=30, interval=0.5, what=series)
        done = promote(project, "2")
    timeline = done.rollout["timeline"]
    counts = collections.Counter(a.version for a in load.answers)
    print(f"\nkubernetes canary: {len(load.answers)} requests {dict(counts)}, "
          f"{len(load.failed)} failed; {done.outcome}")  # fmt: skip
    for entry in timeline:
        print(f"  {entry['phase']}: {entry['candidate']}")
    assert done.status == "rolled_out", done.outcome
    assert operator.errors == []
    assert [e["phase"] for e in timeline] == ["canary 10%", "canary 50%"]
    assert all(e["decision"] == "next" for e in timeline)
    assert all(e["candidate"]["source"] == monitor.url for e in timeline)
    assert all(e["candidate"]["requests"] >= 5 and e["stable"]["requests"] > 0 for e in timeline)
    assert load.failed == [] and counts["1"] > 0 and counts["2"] > 0
    # Every step is a committed SeldonDeployment: the weights are in the repository's history.
    assert committed_weights(project) == [
        [("v1", 100)],
        [("v1", 90), ("v2", 10)],
        [("v1", 50), ("v2", 50)],
        [("v1", 100)],  # every phase passed: back to the plain spec, then the switch
        [("v2", 100)],
    ]
    stored = emulator.get(SELDON_DEPLOYMENTS, PRODUCTION, project.model_name)
    assert [(p["name"], p["traffic"]) for p in stored["spec"]["predictors"]] == [("v2", 100)]
    assert served(project) == ("2", None, "2")


def test_a_failing_candidate_is_rolled_back_on_the_cluster(cluster):
    project, data, emulator, _, _ = cluster
    url = for_environment(project.settings, "production").endpoint(project.model_name)
    failed = pytest.raises(PromotionFailed, match="canary 10% failed analysis: error rate")
    with Load(url, data.X_test, threads=3, max_requests=3000, pause=0.01), failed:
        promote(project, "3")
    request = [r for r in Promotions(project).all() if r.candidate == "3"][-1]
    assert request.status == "failed" and "error rate" in request.outcome
    assert [e["decision"] for e in request.rollout["timeline"]] == ["rollback"]
    stored = emulator.get(SELDON_DEPLOYMENTS, PRODUCTION, project.model_name)
    assert [(p["name"], p["traffic"]) for p in stored["spec"]["predictors"]] == [("v2", 100)]
    assert served(project) == ("2", None, "2")


def test_what_the_cluster_cannot_do_is_refused_before_traffic(cluster):
    project, _, emulator, _, _ = cluster
    settings = project.settings
    blind = Project(settings.model_copy(
        update={"monitor": settings.monitor.model_copy(update={"prometheus_url": None})}
    ))  # fmt: skip
    with pytest.raises(PromotionFailed, match="set monitor.prometheus_url"):
        promote(blind, "1")
    # Seldon splits at random per request: a sticky header would be silently ignored.
    sticky = [
        env.model_copy(update={"rollout": env.rollout.model_copy(
            update={"sticky_header": "x-user"})}) if env.name == "production" else env
        for env in settings.environments
    ]  # fmt: skip
    with pytest.raises(PromotionFailed, match="cannot pin a caller to one version"):
        promote(Project(settings.model_copy(update={"environments": sticky})), "1")
    stored = emulator.get(SELDON_DEPLOYMENTS, PRODUCTION, project.model_name)
    assert [(p["name"], p["traffic"]) for p in stored["spec"]["predictors"]] == [("v2", 100)]
    assert served(project) == ("2", None, "2")

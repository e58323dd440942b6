"""A canary judged by the local Prometheus: each step's requests, errors and p99 are the
Grafana dashboard's own per-version PromQL, evaluated on what Prometheus scraped."""

from __future__ import annotations

import time

import pytest

from mlops_kit.gitops.deploy import deploy, smoke
from mlops_kit.process import wait_until
from mlops_kit.project import Project
from mlops_kit.promote.promotion import Promotions
from mlops_kit.targets import for_environment
from mlops_kit.targets.local import stop_all
from mlops_kit.train.training import load_dataset, train_and_register, training_params
from mlops_kit.verify.monitoring import prometheus
from mlops_kit.verify.monitoring.promql import PrometheusClient
from tests.support import seeded_registry, write_project
from tests.support.load import Load
from tests.support.signers import demo_signers, key

pytestmark = pytest.mark.slow

POLICY = {"approvers": ["bob"], "four_eyes": True, "min_approvals": 1}
CANARY = {"strategy": "canary", "steps": [20, 100], "bake_seconds": 4,
          "analysis": {"min_requests": 5, "max_error_rate": 0.05, "max_p99_ms": 1000,
                       "failure_limit": 1}}  # fmt: skip


@pytest.fixture
def monitored(tmp_path):
    envs = [
        {"name": "staging", "kind": "staging"},
        {"name": "production", "kind": "production", "promotes_from": "staging",
         "approval": POLICY, "rollout": CANARY},
    ]  # fmt: skip
    path = write_project(
        tmp_path, state_dir=str(tmp_path / "state"), environments=envs,
        monitor={"scrape_interval_s": 0.5},
    )  # fmt: skip
    seeded_registry(tmp_path / "state")  # the registry's schema is not what this is about
    project = Project.load(path)
    demo_signers(project)
    data = load_dataset("wine")
    for n in (5, 6):
        version = train_and_register(project, data, training_params(n_estimators=n)).version
        deploy(project, "staging", version, actor="alice")
        smoke(project, "staging", version)
    monitor = prometheus.start(project)
    try:
        yield project, data, monitor
    finally:
        prometheus.stop(project)
        stop_all(project.state_dir)


def promote(project, version):
    promotions = Promotions(project)
    request = promotions.open(version, to_env="production", requested_by="alice")
    return promotions.approve(request.id, "bob", "go", signing_key=key(project, "bob"))


def test_a_canary_step_is_judged_on_the_dashboards_promql(monitored):
    project, data, monitor = monitored
    promote(project, "1")
    client = PrometheusClient(monitor.url)
    # File-based discovery hands a new endpoint to the scrapers within a few seconds.
    query = 'up{environment="production"} == 1'
    assert wait_until(lambda: bool(client.query(query)), timeout=30, interval=0.5)
    url = for_environment(project.settings, "production").endpoint(project.model_name)
    with Load(url, data.X_test, threads=3, max_requests=3000, pause=0.01) as load:
        time.sleep(1.0)
        done = promote(project, "2")
    timeline = done.rollout["timeline"]
    print(f"\n{done.outcome}")
    for entry in timeline:
        print(f"  {entry['phase']}: {entry['candidate']}")
    assert done.status == "rolled_out", done.outcome
    assert load.failed == []
    (step,) = timeline
    assert step["candidate"]["source"] == monitor.url
    assert step["stable"]["source"] == monitor.url
    assert step["candidate"]["requests"] >= 5 and step["candidate"]["errors"] == 0

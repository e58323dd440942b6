"""The local target's routing model: two versions behind one endpoint, weights moved in place."""

from __future__ import annotations

import collections
import time

import httpx
import pytest

from mlops_kit.deployment import Candidate, DeploymentSpec
from mlops_kit.settings import EnvironmentSettings, Settings
from mlops_kit.targets.local import LocalTarget, stop_all
from mlops_kit.verify import v2
from mlops_kit.verify.monitoring.scrape import scrape
from tests.support.load import Load

pytest_plugins = ["tests.support.serving"]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def routed(tmp_path_factory, models):
    settings = Settings(
        state_dir=tmp_path_factory.mktemp("routing"),
        environments=[EnvironmentSettings(name="canary", kind="staging")],
    )
    target = LocalTarget(settings, settings.environment("canary"))
    yield target
    target.close()
    stop_all(settings.state_dir)


def spec(models, **candidate) -> DeploymentSpec:
    base = DeploymentSpec(
        environment="canary", model_name="wine", version="1", model_uri=str(models.v1)
    )
    if not candidate:
        return base
    extra = Candidate(version="2", model_uri=str(models.v2), **candidate)
    return base.model_copy(update={"candidate": extra})


def test_weights_move_in_place_and_every_answer_names_its_version(routed, models):
    first = routed.apply(spec(models))
    assert first.ready and first.candidate is None
    with Load(first.endpoint, models.rows(6)) as load:
        half = routed.apply(spec(models, weight=50))
        time.sleep(1.0)
        full = routed.apply(spec(models, weight=100))
        time.sleep(0.5)
        back = routed.apply(spec(models))
        time.sleep(0.3)
    assert half.pid == full.pid == back.pid == first.pid  # never restarted
    assert half.candidate is not None and half.candidate.weight == 50
    assert full.candidate is not None and full.candidate.weight == 100
    assert full.detail == "already serving"  # a new weight reloads nothing
    assert back.candidate is None and back.version == "1"
    counts = collections.Counter(a.version for a in load.answers)
    print(f"\n{len(load.answers)} answers while the weights moved: {dict(counts)}")
    assert load.failed == []
    assert counts["1"] > 0 and counts["2"] > 0
    # The body names the version always; the routing model also says it in a header.
    assert all(a.header in ("", a.version) for a in load.answers)
    assert {a.header for a in load.answers} >= {"1", "2"}
    metrics = scrape(first.metrics_url)
    assert metrics.total("mlops_kit_routed_requests_total", role="candidate", model_version="2")
    assert metrics.total("mlops_kit_routed_requests_total", role="stable", model_version="1")


def test_a_sticky_header_pins_a_caller(routed, models):
    status = routed.apply(spec(models, weight=50, sticky_header="X-User"))
    body = v2.encode_dataframe(models.rows(1))
    seen: dict[str, set[str]] = collections.defaultdict(set)
    with httpx.Client(trust_env=False, timeout=10) as client:
        for user in [f"user-{i}" for i in range(12)]:
            for _ in range(4):
                r = client.post(status.endpoint + "/infer", json=body, headers={"X-User": user})
                assert r.status_code == 200
                seen[user].add(r.json()["model_version"])
    assert all(len(versions) == 1 for versions in seen.values()), seen
    assert {v for versions in seen.values() for v in versions} == {"1", "2"}


def test_a_shadow_answers_no_client_and_reports_agreement(routed, models):
    status = routed.apply(spec(models, mirror=True, mirror_percent=100))
    assert status.candidate is not None and status.candidate.mirror
    before = scrape(status.metrics_url)
    with Load(status.endpoint, models.rows(6), max_requests=60) as load:
        while len(load.answers) < 60:
            time.sleep(0.05)
    time.sleep(0.3)  # the last shadows finish after their live answers
    after = scrape(status.metrics_url)
    assert load.failed == [] and load.versions() == {"1"}  # no shadow answer reaches a client

    def delta(result: str) -> float:
        name = "mlops_kit_shadow_comparisons_total"
        return after.total(name, result=result) - before.total(name, result=result)

    compared = delta("agree") + delta("disagree")
    print(f"\nshadow: {compared:.0f} compared, {delta('agree'):.0f} agreed")
    assert compared == 60 and delta("error") == 0
    assert 0 < delta("agree") < compared  # v2 answers class 2 always; v1 only sometimes

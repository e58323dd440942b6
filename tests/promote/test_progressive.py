"""Progressive rollouts end to end: canary steps under load, automatic rollback of a bad
candidate, pause / continue / abort through the CLI, shadow, on real git, MLflow and MLServer."""

from __future__ import annotations

import collections
import os
import signal
import threading
import time

import pytest

from mlops_kit.cli import main
from mlops_kit.errors import PromotionFailed
from mlops_kit.gitops.deploy import deploy, smoke
from mlops_kit.gitops.repository import GitOpsRepo
from mlops_kit.project import Project
from mlops_kit.promote import progressive
from mlops_kit.promote.promotion import Promotions
from mlops_kit.registry.client import Registry
from mlops_kit.targets import for_environment
from mlops_kit.targets.local import stop_all
from mlops_kit.train.training import load_dataset, train_and_register, training_params
from tests.support import seeded_registry, write_project
from tests.support.load import Load
from tests.support.rollouts import promote, register_faulty
from tests.support.signers import demo_signers, key

pytestmark = pytest.mark.slow

POLICY = {"approvers": ["bob", "carol"], "four_eyes": True, "min_approvals": 1}
# A generous drift limit: a 10% step sees a few dozen answers, whose mean moves by chance.
ANALYSIS = {"min_requests": 5, "max_error_rate": 0.05, "max_p99_ms": 350, "failure_limit": 1,
            "max_prediction_drift": 1.5}  # fmt: skip


def environments() -> list[dict]:
    canary = {"strategy": "canary", "steps": [10, 50, 100], "bake_seconds": 1.5,
              "analysis": ANALYSIS, "sticky_header": None}  # fmt: skip
    loose = {**ANALYSIS, "max_prediction_drift": None}
    shadow = {"strategy": "shadow", "bake_seconds": 1.5, "mirror_percent": 100,
              "min_agreement": 0.5, "analysis": loose}  # fmt: skip
    return [
        {"name": "staging", "kind": "staging"},
        {"name": "mirror", "kind": "staging", "promotes_from": "staging", "approval": POLICY,
         "rollout": shadow},
        {"name": "blue", "kind": "staging", "promotes_from": "staging", "approval": POLICY,
         "rollout": {"strategy": "blue_green", "bake_seconds": 1.5, "analysis": ANALYSIS}},
        {"name": "production", "kind": "production", "promotes_from": "staging",
         "approval": POLICY, "rollout": canary},
    ]  # fmt: skip


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("progressive")
    path = write_project(root, state_dir=str(root / "state"), environments=environments())
    seeded_registry(root / "state")  # the registry's schema is not what these are about
    project = Project.load(path)
    demo_signers(project)
    data = load_dataset("wine")
    versions = [train_and_register(project, data, training_params(n_estimators=n)).version
                for n in (5, 6, 7)]  # fmt: skip
    versions += [register_faulty(project, data, "error"), register_faulty(project, data, "slow")]
    for version in versions:  # each version passes staging before it may be promoted
        deploy(project, "staging", version, actor="alice")
        smoke(project, "staging", version)
    promote(project, "1")  # the first production version: nothing to share traffic with
    yield project, data, path
    stop_all(project.state_dir)


def endpoint(project, environment="production") -> str:
    return for_environment(project.settings, environment).endpoint(project.model_name)


def served(project, environment="production"):
    status = for_environment(project.settings, environment).status(project.model_name)
    spec = GitOpsRepo.from_settings(project.settings).get(environment, project.model_name)
    alias = Registry(project).by_alias(environment)
    return status, spec, alias.version if alias else None


def test_a_good_canary_goes_10_50_100_under_load_without_a_failed_request(env):
    project, data, _ = env
    with Load(endpoint(project), data.X_test, threads=3, max_requests=2500, pause=0.01) as load:
        done = promote(project, "2")
        time.sleep(0.3)
    status, spec, alias = served(project)
    timeline = done.rollout["timeline"]
    counts = collections.Counter(a.version for a in load.answers)
    print(f"\ncanary under load: {len(load.answers)} requests {dict(counts)}, "
          f"{len(load.failed)} failed; {done.outcome}")  # fmt: skip
    for entry in timeline:
        print(f"  {entry['phase']}: {entry['candidate']}")
    assert done.status == "rolled_out", done.outcome
    assert [e["phase"] for e in timeline] == ["canary 10%", "canary 50%"]
    assert all(e["decision"] == "next" for e in timeline)
    assert load.failed == []
    assert counts["1"] > 0 and counts["2"] > 0
    assert all(e["candidate"]["requests"] >= 5 for e in timeline)
    assert (status.version, status.candidate, spec.version, spec.candidate, alias) == (
        "2",
        None,
        "2",
        None,
        "2",
    )
    tags = Registry(project).get("2").tags
    assert tags[f"mlops.rollout.{done.id}"].startswith("rolled_out: canary")


def test_a_failing_candidate_is_rolled_back_within_one_bake_step(env):
    project, data, _ = env
    began = time.monotonic()
    load = Load(endpoint(project), data.X_test, threads=3, max_requests=2000, pause=0.01)
    failed = pytest.raises(PromotionFailed, match="canary 10% failed analysis: error rate")
    with load, failed:
        promote(project, "4")
    took = time.monotonic() - began
    request = [r for r in Promotions(project).all() if r.candidate == "4"][-1]
    status, spec, alias = served(project)
    versions = collections.Counter(a.version or str(a.status) for a in load.answers)
    print(f"\nbad canary rolled back in {took:.1f} s; clients saw {dict(versions)}")
    assert request.status == "failed" and "error rate" in request.outcome
    assert [e["decision"] for e in request.rollout["timeline"]] == ["rollback"]
    assert (status.version, status.candidate, spec.version, spec.candidate, alias) == (
        "2",
        None,
        "2",
        None,
        "2",
    )
    # Only the 10% step reached v4 (it answers its own example rows, fails the others).
    assert set(versions) <= {"2", "4", "500"}
    assert versions["4"] + versions["500"] < 0.25 * len(load.answers)


def test_a_slow_candidate_fails_its_latency_analysis(env):
    project, data, _ = env
    load = Load(endpoint(project), data.X_test, threads=3, max_requests=2000, pause=0.01)
    with load, pytest.raises(PromotionFailed, match="p99"):
        promote(project, "5")
    assert load.failed == []  # slow is not broken: every client got an answer
    status, spec, alias = served(project)
    assert (status.version, status.candidate, alias) == ("2", None, "2")


def test_too_little_traffic_pauses_and_a_person_continues_or_aborts(env, capsys):
    project, _, path = env
    paused = promote(project, "3")  # no load: nothing to judge the candidate by
    assert paused.status == "paused" and "fewer than 5" in paused.outcome
    status, spec, _ = served(project)
    assert spec.candidate is not None and spec.candidate.weight == 10
    assert status.candidate is not None and status.candidate.weight == 10
    assert main(["--config", str(path), "rollout", "status", paused.id]) == 0
    assert "canary 10%" in capsys.readouterr().out
    # Not on the approver list: refused, nothing changes.
    assert main(["--config", str(path), "rollout", "continue", paused.id, "--as", "mallory",
                 "--key", str(key(project, "bob"))]) == 1  # fmt: skip
    bob = ["--as", "bob", "--key", str(key(project, "bob"))]
    assert main(["--config", str(path), "rollout", "continue", paused.id, *bob]) == 0
    again = Promotions(project).get(paused.id)
    assert again.status == "paused" and again.rollout["timeline"][-1]["phase"] == "canary 50%"
    with pytest.raises(PromotionFailed, match="in the middle of another rollout"):
        promote(project, "1")  # one rollout per environment at a time
    assert main(["--config", str(path), "rollout", "abort", paused.id, *bob, "-m", "quiet"]) == 0
    aborted = Promotions(project).get(paused.id)
    assert aborted.status == "failed" and "aborted by bob" in aborted.outcome
    assert [d.kind for d in aborted.decisions] == ["approve", "continue", "abort"]
    status, spec, alias = served(project)
    assert (status.version, status.candidate, spec.candidate, alias) == ("2", None, None, "2")


def test_a_shadow_reports_agreement_and_no_client_sees_its_answers(env):
    project, data, _ = env
    promote(project, "1", to_env="mirror")  # the first version there: switched at once
    with Load(endpoint(project, "mirror"), data.X_test, threads=3, max_requests=1500,
              pause=0.01) as load:  # fmt: skip
        done = promote(project, "2", to_env="mirror")
    shadow = done.rollout["timeline"][0]
    print(f"\nshadow: {shadow['candidate']}")
    assert done.status == "rolled_out", done.outcome
    assert shadow["phase"] == "shadow 100%" and shadow["candidate"]["agreement"] is not None
    assert shadow["candidate"]["agreement"] > 0.5
    during = [a for a in load.answers if a.status == 200]
    assert load.failed == [] and during
    assert served(project, "mirror")[0].version == "2"


def test_a_person_continues_a_quiet_canary_to_the_end(env):
    project, _, _ = env
    request = promote(project, "3")
    assert request.status == "paused"
    bob = key(project, "bob")
    promotions = Promotions(project)
    after_10 = progressive.resume(promotions, request.id, "bob", "continue", signing_key=bob)
    assert after_10.status == "paused" and "canary 50%" in after_10.outcome
    done = progressive.resume(promotions, request.id, "carol", "continue", "quiet night",
                              signing_key=key(project, "carol"))  # fmt: skip
    assert done.status == "rolled_out", done.outcome
    decisions = [e["decision"] for e in done.rollout["timeline"]]
    assert decisions == ["pause", "continue", "pause", "continue"]
    status, spec, alias = served(project)
    assert (status.version, status.candidate, spec.candidate, alias) == ("3", None, None, "3")
    # One rollback steps back over the whole rollout, to the plain previous version.
    Promotions(project).rollback("production", "bob")
    status, spec, alias = served(project)
    assert (status.version, status.candidate, spec.candidate, alias) == ("2", None, None, "2")


def test_blue_green_loads_green_beside_blue_and_switches_at_once(env):
    project, data, _ = env
    promote(project, "1", to_env="blue")
    load = Load(endpoint(project, "blue"), data.X_test, threads=3, max_requests=1500, pause=0.01)
    with load:
        done = promote(project, "2", to_env="blue")
        time.sleep(0.2)
    phases = [(e["phase"], e["decision"]) for e in done.rollout["timeline"]]
    counts = collections.Counter(a.version for a in load.answers)
    print(f"\nblue/green under load: {dict(counts)}, {len(load.failed)} failed; {phases}")
    assert done.status == "rolled_out", done.outcome
    assert phases == [("green loaded beside blue", "next"), ("switched to green", "next")]
    assert load.failed == [] and counts["1"] > 0 and counts["2"] > 0
    switched = done.rollout["timeline"][1]
    assert switched["weights"] == {"stable": 0, "candidate": 100}
    assert switched["stable"]["requests"] == 0  # at once: blue took no request after the switch
    assert served(project, "blue")[0].version == "2"


def test_a_server_lost_mid_step_rolls_the_rollout_back(env):
    project, _, _ = env
    repo = GitOpsRepo.from_settings(project.settings)
    before = served(project)[0]
    killed: list[int] = []

    def kill_once_the_canary_is_committed() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            spec = repo.get("production", project.model_name)
            if spec is not None and spec.candidate is not None:
                status = for_environment(project.settings, "production").status(project.model_name)
                if status is not None and status.candidate is not None and status.pid:
                    os.kill(status.pid, signal.SIGKILL)
                    killed.append(status.pid)
                    return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_once_the_canary_is_committed)
    killer.start()
    try:
        with pytest.raises(PromotionFailed, match="canary 10% could not run"):
            promote(project, "3")
    finally:
        killer.join(70)
    status, spec, alias = served(project)
    assert killed and status.pid != killed[0]  # sync restarted the server
    assert (status.version, status.candidate, spec.candidate, alias) == (
        before.version,
        None,
        None,
        before.version,
    )

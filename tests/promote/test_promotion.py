"""Promotion requests, approvals, rollout, rollback and the audit trail, on real git + MLServer."""

from __future__ import annotations

import functools
import shutil
import subprocess
import threading
import time
from datetime import UTC, datetime

import httpx
import pytest

from mlops_kit.errors import ApprovalRefused, PromotionFailed
from mlops_kit.gitops import audit
from mlops_kit.gitops.deploy import deploy, smoke
from mlops_kit.gitops.repository import GitOpsRepo
from mlops_kit.gitops.sync import watch
from mlops_kit.project import Project
from mlops_kit.promote import approvals, hooks
from mlops_kit.promote.promotion import Promotions
from mlops_kit.registry.client import Registry
from mlops_kit.settings import ApprovalPolicy, EnvironmentSettings
from mlops_kit.targets import for_environment
from mlops_kit.targets.local import stop_all
from mlops_kit.train.training import load_dataset, train_and_register, training_params
from mlops_kit.verify import v2
from tests.support import seeded_registry, write_project
from tests.support.signers import demo_signers, key

pytestmark = pytest.mark.slow

POLICY = ApprovalPolicy(approvers=["bob", "carol"], four_eyes=True, min_approvals=1)


def make_project(root, **settings):
    if "registry_uri" not in settings:  # the registry's schema is not what these are about
        seeded_registry(root / "state")
    project = Project.load(
        write_project(root, **settings),
        state_dir=root / "state",
        environments=[
            EnvironmentSettings(name="staging", kind="staging"),
            EnvironmentSettings(name="production", kind="production", approval=POLICY),
        ],
    )
    demo_signers(project)
    data = load_dataset("wine")
    for n in (5, 6, 7):
        train_and_register(project, data, training_params(n_estimators=n))
    return project, data


def staged(root, **settings):
    """Three versions that passed staging, v1 under ``staging``; the servers stopped after."""
    project, data = make_project(root, **settings)
    for version in (3, 2, 1):  # each version passes staging before it may be promoted
        deploy(project, "staging", version, actor="alice")
        smoke(project, "staging", version)
    Registry(project).set_alias("staging", 1)
    yield project, data
    stop_all(project.state_dir)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    yield from staged(tmp_path_factory.mktemp("promo"))


@pytest.fixture(scope="module")
def pg_env(tmp_path_factory, _postgres_session):
    """The same, its registry on the session's PostgreSQL (a fresh database)."""
    url = _postgres_session.create_database("promo")
    yield from staged(tmp_path_factory.mktemp("promo-pg"), registry_uri=url)


def production_version(project):
    status = for_environment(project.settings, "production").status(project.model_name)
    return status.version if status else None


def promote(project, version, requester="alice", approver="bob"):
    promotions = Promotions(project)
    request = promotions.open(version, requested_by=requester)
    return promotions.approve(
        request.id, approver, "looks good", signing_key=key(project, approver)
    )


# -- the pure approvals model ----------------------------------------------------------------


def pending(requested_by="alice"):
    return approvals.PromotionRequest(
        id="r1", model_name="m", from_env="staging", to_env="production", candidate="2",
        current="1", requested_by=requested_by, requested_at="2026-01-01T00:00:00+00:00",
    )  # fmt: skip


def test_policy_rules():
    with pytest.raises(ApprovalRefused, match="not verified"):
        approvals.decide(POLICY, pending(), "bob", "approve")
    decide = functools.partial(approvals.decide, verified=True)
    with pytest.raises(ApprovalRefused, match="four-eyes"):
        decide(POLICY, pending("bob"), "bob", "approve")
    with pytest.raises(ApprovalRefused, match="not on the approver list"):
        decide(POLICY, pending(), "mallory", "approve")
    with pytest.raises(ApprovalRefused, match="needs a reason"):
        decide(POLICY, pending(), "bob", "reject")
    two = ApprovalPolicy(approvers=[], min_approvals=2)
    once = decide(two, pending(), "bob", "approve")
    assert once.status == "pending" and approvals.approvals_needed(two, once) == 1
    with pytest.raises(ApprovalRefused, match="already approved"):
        decide(two, once, "bob", "approve")
    twice = decide(two, once, "carol", "approve")
    assert twice.status == "approved" and twice.approvers == ["bob", "carol"]
    with pytest.raises(ApprovalRefused, match="already approved"):
        decide(two, twice, "dave", "approve")
    assert approvals.PromotionRequest.from_dict(twice.to_dict()) == twice


# -- against real git and MLServer -----------------------------------------------------------


def test_refused_decisions_change_nothing(env):
    project, _ = env
    promotions = Promotions(project)
    request = promotions.open(1, requested_by="bob")
    repo = GitOpsRepo.from_settings(project.settings)
    head = repo.head()
    with pytest.raises(ApprovalRefused, match="four-eyes"):
        promotions.approve(request.id, "bob", signing_key=key(project, "bob"))
    with pytest.raises(ApprovalRefused, match="not on the approver list"):
        promotions.approve(request.id, "mallory", signing_key=key(project, "bob"))
    assert repo.head() == head
    assert promotions.get(request.id).status == "pending"
    assert production_version(project) is None
    rejected = promotions.reject(
        request.id, "carol", "wait for the load test", signing_key=key(project, "carol")
    )
    assert rejected.status == "rejected"
    assert f"promote/{request.id}" not in repo.list_branches("promote/")
    assert production_version(project) is None


def test_approved_request_rolls_out_and_is_recorded(env):
    project, _ = env
    done = promote(project, 1)
    assert done.status == "rolled_out"
    assert production_version(project) == "1"
    assert Registry(project).by_alias("production").version == "1"
    merge = GitOpsRepo.from_settings(project.settings).history(environment="production")[0]
    assert merge.trailers["Approved-By"] == "bob"
    assert merge.trailers["Requested-By"] == "alice"
    assert merge.trailers["Request-Id"] == done.id
    record = Promotions(project).get(done.id)
    assert record.status == "rolled_out" and record.decisions[0].actor == "bob"
    assert record.evidence["metrics"]["candidate"]["accuracy"] > 0.8
    assert Registry(project).get(1).tags[f"mlops.promotion.{done.id}"] == "rolled_out"


def test_promotion_under_load_drops_nothing(env):
    project, data = env
    if production_version(project) is None:
        promote(project, 1)
    url = for_environment(project.settings, "production").endpoint(project.model_name) + "/infer"
    body = v2.encode_dataframe(data.X_test.head(1))
    stop = threading.Event()
    results: list[tuple[int, str]] = []

    def client():
        with httpx.Client(timeout=10) as http:
            for _ in range(5000):  # bounded; stops when the promotion is done
                if stop.is_set():
                    return
                r = http.post(url, json=body)
                results.append((r.status_code, r.json().get("model_version", "")))

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    started = time.monotonic()
    promote(project, 2)
    took = time.monotonic() - started
    time.sleep(0.5)
    stop.set()
    for t in threads:
        t.join(30)
    failed = [r for r in results if r[0] != 200]
    versions = [v for _, v in results]
    print(f"\n{len(results)} requests during promotion ({took:.2f} s): {len(failed)} failed")
    assert not failed
    assert versions[0] == "1" and versions[-1] == "2"
    assert production_version(project) == "2"


def test_a_candidate_failing_verification_never_answers_production(env):
    project, data = env
    before = production_version(project)
    url = for_environment(project.settings, "production").endpoint(project.model_name) + "/infer"
    body = v2.encode_dataframe(data.X_test.head(1))
    seen: list[tuple[int, str]] = []
    checked: list[str] = []
    stop = threading.Event()

    def client():
        with httpx.Client(timeout=10) as http:
            for _ in range(5000):  # bounded; stops when the attempt is over
                if stop.is_set():
                    return
                r = http.post(url, json=body)
                seen.append((r.status_code, r.json().get("model_version", "")))

    def refuse(environment, spec, status):
        checked.append(status.endpoint)  # the candidate's private endpoint, checked first
        raise RuntimeError("latency budget exceeded")

    hooks.register("after_deploy", refuse)
    thread = threading.Thread(target=client)
    thread.start()
    try:
        with pytest.raises(PromotionFailed, match="before it took traffic.*latency budget"):
            promote(project, 3)
    finally:
        hooks.unregister("after_deploy", refuse)
        stop.set()
        thread.join(30)
    assert checked and "--candidate-3" in checked[0]
    print(f"\n{len(seen)} production answers during the failed attempt, all v{before}")
    assert seen and all(s == (200, before) for s in seen), set(seen)
    assert production_version(project) == before
    assert Registry(project).by_alias("production").version == before
    failed = [r for r in Promotions(project).all() if r.candidate == "3"][-1]
    assert failed.status == "failed" and "refused before it took traffic" in failed.outcome
    newest = GitOpsRepo.from_settings(project.settings).history(environment="production")[0]
    assert newest.trailers.get("Request-Id") != failed.id  # nothing was merged
    folder = for_environment(project.settings, "production").log_path(project.model_name).parent
    assert not list(folder.glob("*--candidate-*")), "the candidate's files were left behind"


def test_candidate_that_cannot_load_never_takes_traffic(env, tmp_path):
    project, data = env
    before = production_version(project)
    path = Registry(project).local_path(3)
    backup = tmp_path / "backup"
    shutil.copytree(path, backup)
    url = for_environment(project.settings, "production").endpoint(project.model_name) + "/infer"
    body = v2.encode_dataframe(data.X_test.head(1))
    seen = []
    stop = threading.Event()

    def client():
        with httpx.Client(timeout=10) as http:
            for _ in range(5000):
                if stop.is_set():
                    return
                r = http.post(url, json=body)
                seen.append((r.status_code, r.json().get("model_version")))

    for f in path.iterdir():
        if f.name != "MLmodel" and f.is_file():
            f.write_bytes(b"corrupt")
    thread = threading.Thread(target=client)
    thread.start()
    try:
        with pytest.raises(PromotionFailed):
            promote(project, 3)
    finally:
        stop.set()
        thread.join(30)
        shutil.rmtree(path)
        shutil.copytree(backup, path)
    assert seen and all(s == (200, before) for s in seen)
    assert production_version(project) == before


@pytest.mark.parametrize("registry", ["sqlite", "postgres"])
def test_concurrent_promotions_keep_a_linear_history(registry, request):
    project, _ = request.getfixturevalue("env" if registry == "sqlite" else "pg_env")
    outcomes: list[str] = []
    errors: list[BaseException] = []

    def attempt(i):
        try:
            outcomes.append(promote(project, 1 + i % 2, requester=f"dev{i}").status)
        except Exception as exc:  # every attempt must be accounted for
            errors.append(exc)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(10)]
    began = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    seconds = time.monotonic() - began
    assert len(outcomes) + len(errors) == 10
    # A request opened while another was pending supersedes it: the older one can no longer
    # be approved. Every attempt either rolled out or was refused for that reason.
    assert outcomes and set(outcomes) == {"rolled_out"}, errors
    assert all(isinstance(e, ApprovalRefused) and "superseded" in str(e) for e in errors), errors
    repo = GitOpsRepo.from_settings(project.settings)
    work = repo.root / "work"
    fmt = "--format=%(trailers:key=Request-Id,valueonly)"
    log = ["git", "-C", str(work), "log", "--first-parent", "--merges", fmt, "origin/main"]
    merges = subprocess.run(log, capture_output=True, text=True, check=True).stdout.split()
    requests = [r for r in Promotions(project).all() if r.requested_by.startswith("dev")]
    rolled = {r.id for r in requests if r.status == "rolled_out"}
    assert len(requests) == 10 and len(rolled) == len(outcomes) and rolled <= set(merges)
    assert {r.status for r in requests} <= {"rolled_out", "superseded"}
    assert not repo.list_branches("promote/")
    print(
        f"\n10 concurrent promotions ({registry} registry) in {seconds:.1f} s: {len(rolled)} "
        f"rolled out, each a merge commit on main's first-parent history ({len(merges)} there "
        f"in all), {len(errors)} refused as superseded; {len(requests)} request files"
    )


def test_rollback_steps_back_while_watch_syncs(env):
    project, _ = env
    promote(project, 1)
    promote(project, 2)
    stop = threading.Event()
    watcher = threading.Thread(
        target=watch, args=(project, "production"), kwargs={"interval": 0.2, "stop": stop}
    )
    watcher.start()
    try:
        Promotions(project).rollback("production", actor="oncall")
        assert production_version(project) == "1"
        assert Registry(project).by_alias("production").version == "1"
        time.sleep(1)
        assert production_version(project) == "1"
    finally:
        stop.set()
        watcher.join(30)
    newest = GitOpsRepo.from_settings(project.settings).history(environment="production")[0]
    assert newest.trailers["Rollback"] == "production"


def test_history_answers_who_and_when(env):
    project, _ = env
    events = audit.history(project)
    promos = [e for e in events if e.action == "promotion"]
    assert promos and promos[0].approved_by == "bob"
    assert any(e.action == "rollback" for e in events)
    now = datetime.now(UTC)
    assert audit.served_at(project, "production", now) == production_version(project)
    first = next(e for e in events if e.environment == "production")
    assert audit.served_at(project, "production", first.at.replace(year=2000)) is None
    assert len(audit.table(events)) == len(events)

"""A canary on the SageMaker target, driven by the promotion engine and judged on CloudWatch.

Production is a SageMaker endpoint (moto's server on loopback, through the real boto3
clients): each canary step is a GitOps commit of the candidate's weight, synced as a second
production variant whose weight moves with UpdateEndpointWeightsAndCapacities; callers'
requests are routed by those weights (tests/support/sagemaker_runtime.py) and each step is
judged on what SageMaker published to CloudWatch for each variant (AWS/SageMaker,
Invocations, Invocation5XXErrors, ModelLatency p99).
"""

from __future__ import annotations

import collections
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
import yaml

from mlops_kit.errors import PromotionFailed
from mlops_kit.gitops.deploy import deploy, smoke
from mlops_kit.gitops.repository import GitOpsRepo
from mlops_kit.project import Project
from mlops_kit.promote import analysis
from mlops_kit.promote.cloudwatch import CloudWatchSource
from mlops_kit.promote.promotion import Promotions
from mlops_kit.registry.client import Registry
from mlops_kit.train.training import load_dataset, train_and_register, training_params
from tests.support import seeded_registry, write_project
from tests.support.rollouts import promote, register_faulty
from tests.support.signers import demo_signers

pytestmark = pytest.mark.slow

MODEL = "wine-classifier"
ENDPOINT = MODEL + "-production"
MANIFEST = f"environments/production/{MODEL}.yaml"
POLICY = {"approvers": ["bob"], "four_eyes": True, "min_approvals": 1}
# One client thread invokes ~50 times a second here: a 3 s step at 10% sees about 15 of them
# on the candidate, well above min_requests even on a machine busy with other work.
CANARY = {"strategy": "canary", "steps": [10, 50, 100], "bake_seconds": 3.0,
          "analysis": {"min_requests": 4, "max_error_rate": 0.05, "max_p99_ms": 2000,
                       "failure_limit": 1}}  # fmt: skip


@dataclass
class Invocations:
    """``with Invocations(runtime, rows) as load: ...``: one thread invoking the production
    endpoint with one row at a time until stopped or ``max_requests`` were sent; ``answers``
    holds (invoked variant, HTTP status) of each."""

    runtime: Any
    rows: Any
    max_requests: int = 4000
    answers: list[tuple[str | None, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        for n in range(self.max_requests):
            if self._stop.is_set():
                return
            self.invoke(n)

    def invoke(self, n: int) -> None:
        """Invoke the endpoint with row ``n`` (modulo the rows); record what answered."""
        row = self.rows.iloc[[n % len(self.rows)]]
        body = json.dumps({"dataframe_records": row.to_dict(orient="records")})
        try:
            answer = self.runtime.invoke_endpoint(
                EndpointName=ENDPOINT, Body=body, ContentType="application/json"
            )
            status, headers = 200, answer["ResponseMetadata"]["HTTPHeaders"]
        except self.runtime.exceptions.ClientError as exc:
            status = exc.response["ResponseMetadata"]["HTTPStatusCode"]
            headers = exc.response["ResponseMetadata"]["HTTPHeaders"]
        self.answers.append((headers.get("x-amzn-invoked-production-variant"), status))

    @property
    def failed(self) -> list[tuple[str | None, int]]:
        return [a for a in self.answers if a[1] != 200]

    def __enter__(self) -> Invocations:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


@pytest.fixture
def sm(tmp_path, sagemaker_aws):
    """A project whose staging and production are SageMaker endpoints; production rolls out
    by canary. Returns the project, the wine data and a sagemaker-runtime client."""
    environments = [
        {"name": "staging", "kind": "staging", "target": "sagemaker"},
        {"name": "production", "kind": "production", "target": "sagemaker",
         "promotes_from": "staging", "approval": POLICY, "rollout": CANARY},
    ]  # fmt: skip
    path = write_project(tmp_path, state_dir=str(tmp_path / "state"),
                         environments=environments, sagemaker={"poll_interval": 0.02})  # fmt: skip
    seeded_registry(tmp_path / "state")  # the registry's schema is not what these are about
    project = Project.load(path)
    sagemaker_aws.client("s3").create_bucket(Bucket=project.settings.sagemaker.bucket)
    demo_signers(project)
    return project, load_dataset("wine"), sagemaker_aws.client("sagemaker-runtime")


def staged(project: Project, *versions: str) -> None:
    """Each version passes staging, as it must before it may be promoted."""
    for version in versions:
        deploy(project, "staging", version, actor="alice")
        smoke(project, "staging", version)


def committed_weights(project: Project) -> list[dict[str, int]]:
    """The production variants' weights of each commit of the manifest, oldest first."""
    repo = GitOpsRepo.from_settings(project.settings)
    weights = []
    for commit in reversed(repo.history(MANIFEST)):
        text = repo.read_file(commit.sha, MANIFEST)
        variants = yaml.safe_load(text)["spec"]["productionVariants"] if text else []
        weights.append({v["variantName"]: v["initialVariantWeight"] for v in variants})
    return weights


def live_variants(sagemaker) -> dict[str, float]:
    described = sagemaker.describe_endpoint(EndpointName=ENDPOINT)
    return {v["VariantName"]: v.get("CurrentWeight", 1.0) for v in described["ProductionVariants"]}


def test_a_sagemaker_canary_goes_10_50_100_judged_on_cloudwatch(sm, sagemaker_aws):
    project, data, runtime = sm
    assert isinstance(analysis.metrics_source(project, "production"), CloudWatchSource)
    for n in (5, 6):
        train_and_register(project, data, training_params(n_estimators=n))
    staged(project, "1", "2")
    assert promote(project, "1").status == "rolled_out"  # nothing to share traffic with yet
    began = time.monotonic()
    with Invocations(runtime, data.X_test) as load:
        done = promote(project, "2")
    took = time.monotonic() - began
    timeline = done.rollout["timeline"]
    served = collections.Counter(variant for variant, _ in load.answers)
    print(f"\nSageMaker canary in {took:.1f} s: {len(load.answers)} invocations {dict(served)}, "
          f"{len(load.failed)} failed; {done.outcome}")  # fmt: skip
    for entry in timeline:
        print(f"  {entry['phase']}: stable {entry['stable']} candidate {entry['candidate']}")
    assert done.status == "rolled_out", done.outcome
    assert [(e["phase"], e["decision"]) for e in timeline] == [
        ("canary 10%", "next"),
        ("canary 50%", "next"),
    ]
    for entry in timeline:
        assert entry["stable"]["source"] == entry["candidate"]["source"] == "cloudwatch"
        assert entry["candidate"]["requests"] >= 4 and entry["stable"]["requests"] > 0
        assert entry["candidate"]["errors"] == 0 and entry["candidate"]["p99_ms"] > 0
    # More of the candidate's share at 50% than at 10%, as the weights route it.
    shares = [e["candidate"]["requests"] / (e["candidate"]["requests"] + e["stable"]["requests"])
              for e in timeline]  # fmt: skip
    assert shares[0] < shares[1]
    assert load.failed == []
    assert served["v1"] > 0 and served["v2"] > 0
    assert committed_weights(project) == [
        {"v1": 100},
        {"v1": 90, "v2": 10},
        {"v1": 50, "v2": 50},
        {"v1": 100},  # every phase passed: the plain stable spec, then the promotion
        {"v2": 100},
    ]
    assert live_variants(sagemaker_aws.client("sagemaker")) == {"v2": 1.0}
    assert Registry(project).by_alias("production").version == "2"


def test_a_failing_sagemaker_candidate_is_rolled_back_within_its_first_step(sm, sagemaker_aws):
    project, data, runtime = sm
    train_and_register(project, data, training_params(n_estimators=5))
    faulty = register_faulty(project, data, "error")
    staged(project, "1", faulty)
    promote(project, "1")
    began = time.monotonic()
    failed = pytest.raises(PromotionFailed, match="canary 10% failed analysis: error rate")
    # The faulty model answers its own example rows (the first 3): live traffic is the others.
    first = data.X_test.iloc[:, 0]
    live = data.X_test[~first.isin(first.head(3))]
    with Invocations(runtime, live) as load, failed:
        promote(project, faulty)
    took = time.monotonic() - began
    request = [r for r in Promotions(project).all() if r.candidate == faulty][-1]
    (step,) = request.rollout["timeline"]
    seen = collections.Counter(load.answers)
    print(f"\nbad SageMaker canary rolled back in {took:.1f} s; callers saw {dict(seen)}; "
          f"{step['candidate']}")  # fmt: skip
    assert request.status == "failed" and "error rate" in request.outcome
    assert step["decision"] == "rollback" and step["candidate"]["source"] == "cloudwatch"
    assert step["candidate"]["errors"] > 0
    # Only the candidate's variant failed, each time as SageMaker's ModelError (424).
    assert {status for variant, status in load.answers if variant == "v1"} == {200}
    assert {status for variant, status in load.answers if variant == "v2"} == {424}
    weights = committed_weights(project)
    assert weights[:3] == [{"v1": 100}, {"v1": 90, "v2": 10}, {"v1": 100, "v2": 0}]
    assert weights[-1] == {"v1": 100}  # the rollout's commits reverted
    spec = GitOpsRepo.from_settings(project.settings).get("production", MODEL)
    assert (spec.version, spec.candidate) == ("1", None)
    assert live_variants(sagemaker_aws.client("sagemaker")) == {"v1": 1.0}
    assert Registry(project).by_alias("production").version == "1"
    after = Invocations(runtime, live)
    for n in range(20):
        after.invoke(n)
    assert set(after.answers) == {("v1", 200)}

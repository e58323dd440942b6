"""A rollout step's analysis, its phases and its settings: pure functions, no servers."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from mlops_kit.deployment import Candidate
from mlops_kit.gitops import manifests
from mlops_kit.gitops.sync import _candidate_change
from mlops_kit.promote import analysis, progressive
from mlops_kit.promote.analysis import VersionFigures, judge
from mlops_kit.promote.approvals import PromotionRequest
from mlops_kit.settings_rollout import RolloutSettings
from mlops_kit.verify.monitoring.scrape import MetricsSnapshot
from tests.support.specs import SPECS

RULES = RolloutSettings(
    strategy="canary",
    analysis={
        "min_requests": 20,
        "max_error_rate": 0.05,
        "max_p99_ms": 200,
        "max_prediction_drift": 0.5,
    },  # fmt: skip
)
STABLE = VersionFigures("1", "stable", requests=500, p99_ms=40, mean_prediction=1.0)


def cand(**figures) -> VersionFigures:
    base = {"requests": 50, "errors": 0, "p99_ms": 45.0, "mean_prediction": 1.1}
    return VersionFigures("2", "candidate", **{**base, **figures})


def test_a_healthy_candidate_passes():
    assert judge(RULES, STABLE, cand()) == analysis.Verdict("pass", [])


@pytest.mark.parametrize(
    ("figures", "reason"),
    [
        ({"errors": 5}, "error rate 10.0% (5 of 50) above 5.0%"),
        ({"p99_ms": 450.0}, "p99 450 ms above 200 ms"),
        ({"mean_prediction": 2.0}, "prediction drift 1.00 above 0.50"),
    ],
)
def test_each_limit_fails_the_step_and_says_why(figures, reason):
    verdict = judge(RULES, STABLE, cand(**figures))
    assert verdict.outcome == "fail" and verdict.reasons[0].startswith(reason)


def test_too_few_requests_is_inconclusive_unless_the_errors_already_decide():
    quiet = judge(RULES, STABLE, cand(requests=3))
    assert quiet == analysis.Verdict("inconclusive", ["3 candidate requests, fewer than 20"])
    # 3 errors in 4 requests break 5% of the 20 needed whatever the other 16 do.
    assert judge(RULES, STABLE, cand(requests=4, errors=3)).outcome == "fail"


def test_a_shadow_is_judged_on_its_agreement():
    rules = RolloutSettings(strategy="shadow", min_agreement=0.9, analysis={"min_requests": 10})
    shadow = VersionFigures("2", "shadow", requests=40, agree=30, disagree=10, mean_prediction=1)
    verdict = judge(rules, STABLE, shadow)
    assert shadow.agreement == 0.75
    assert verdict.outcome == "fail" and verdict.reasons == ["agreement 75.0% below 90.0%"]


def snapshot(at: float, ok: float, errors: float, buckets: dict[str, float], pred: float):
    labels = (("model_name", "wine"), ("model_version", "2"), ("role", "candidate"))
    samples = [
        (analysis.REQUESTS, (*labels, ("outcome", "ok")), ok),
        (analysis.REQUESTS, (*labels, ("outcome", "error")), errors),
        (analysis.PREDICTION + "_count", labels, ok),
        (analysis.PREDICTION + "_sum", labels, pred),
    ]
    samples += [
        (analysis.DURATION + "_bucket", (*labels, ("le", le)), n) for le, n in buckets.items()
    ]
    return MetricsSnapshot("http://127.0.0.1:1/metrics", at, tuple(samples))


def test_figures_are_the_difference_of_two_scrapes():
    before = snapshot(100.0, 10, 0, {"0.05": 10, "0.1": 10, "+Inf": 10}, 10.0)
    after = snapshot(102.5, 110, 2, {"0.05": 20, "0.1": 110, "+Inf": 112}, 160.0)
    got = analysis.figures(before, after, "wine", "2", "candidate")
    assert (got.requests, got.errors, got.seconds) == (102, 2, 2.5)
    assert got.mean_prediction == pytest.approx(1.5)
    assert got.p99_ms == pytest.approx(100.0)  # beyond the last finite bucket: its bound
    assert analysis.figures(before, before, "wine", "2", "shadow").requests == 0


def test_strategies_have_their_phases():
    assert [p["weight"] for p in progressive.phases(RULES)] == [10, 50]
    shadow = progressive.phases(RolloutSettings(strategy="shadow", mirror_percent=25))
    assert shadow == [{"name": "shadow 25%", "weight": 0, "mirror": True}]
    blue_green = progressive.phases(RolloutSettings(strategy="blue_green"))
    assert [p["weight"] for p in blue_green] == [0, 100] and not blue_green[0]["analyse"]
    assert progressive.phases(RolloutSettings()) == []  # replace


@pytest.mark.parametrize("steps", [[10, 50], [50, 10, 100], [0, 100], [10, 10, 100], []])
def test_canary_steps_must_rise_to_100(steps):
    with pytest.raises(ValidationError, match="steps"):
        RolloutSettings(strategy="canary", steps=steps)


@pytest.mark.parametrize("fmt", ["seldon-v1", "seldon-v2", "sagemaker"])
def test_the_candidate_survives_the_gitops_round_trip(fmt):
    spec = SPECS["mlflow"].model_copy(
        update={
            "candidate": Candidate(
                version="4", model_uri="s3://m/4", weight=10, sticky_header="X-User"
            )
        }  # fmt: skip
    )
    if fmt == "sagemaker":
        spec = spec.model_copy(update={"replicas": 1})
    assert manifests.spec_from_manifest(manifests.render(spec, fmt)) == spec


def test_sync_names_a_candidate_change():
    ten = Candidate(version="4", model_uri="m", weight=10)
    shadow = Candidate(version="4", model_uri="m", mirror=True, mirror_percent=30)
    assert _candidate_change(ten, ten.model_copy(update={"weight": 50})) == (
        "candidate v4 at 10% -> v4 at 50%"
    )
    assert _candidate_change(None, shadow) == "candidate none -> v4 at mirror 30%"


def test_the_timeline_reads_as_rows():
    entry = {
        "at": "2026-12-04T21:11:27+00:00", "phase": "canary 10%", "decision": "next",
        "weights": {"stable": 90, "candidate": 10}, "reasons": [],
        "stable": STABLE.to_dict(), "candidate": cand(errors=1).to_dict(),
    }  # fmt: skip
    request = PromotionRequest(
        id="r1", model_name="m", from_env="staging", to_env="production", candidate="2",
        current="1", requested_by="alice", requested_at="2026-12-04T21:00:00+00:00",
        rollout={"strategy": "canary", "timeline": [entry]},
    )  # fmt: skip
    (row,) = progressive.timeline_rows(request)
    assert row["weights"] == "90/10" and row["requests"] == "500/50"
    assert row["errors"] == "0.0%/2.0%" and row["p99_ms"] == "40/45"
    assert PromotionRequest.from_dict(request.to_dict()) == request

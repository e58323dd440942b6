"""CloudWatchSource against what SageMaker publishes: the test server's InvokeEndpoint routes by
variant weight and puts each invocation's metrics into moto's CloudWatch, in this process
(tests/support/sagemaker_runtime.py); the source reads them back through the real boto3
CloudWatch client."""

from __future__ import annotations

import collections
import json
from datetime import UTC, datetime, timedelta

import pytest

from mlops_kit.deployment import Candidate
from mlops_kit.errors import CloudWatchUnavailable
from mlops_kit.promote import analysis
from mlops_kit.promote.cloudwatch import CloudWatchSource
from mlops_kit.settings import EnvironmentSettings

MODEL = "wine-classifier"
ENDPOINT = MODEL + "-staging"


@pytest.fixture
def sm_project(tmp_path, sagemaker_aws):
    from mlops_kit.project import Project
    from tests.support import write_project

    project = Project.load(
        write_project(tmp_path),
        state_dir=tmp_path / "state",
        environments=[EnvironmentSettings(name="staging", kind="staging", target="sagemaker")],
        sagemaker={"poll_interval": 0.02},
    )
    sagemaker_aws.client("s3").create_bucket(Bucket=project.settings.sagemaker.bucket)
    return project


def invoke(runtime, body: str, **extra) -> tuple[str | None, int, dict]:
    """(invoked variant, HTTP status, error body) of one InvokeEndpoint."""
    try:
        answer = runtime.invoke_endpoint(
            EndpointName=ENDPOINT, Body=body, ContentType="application/json", **extra
        )
        meta, error = answer["ResponseMetadata"], {}
    except runtime.exceptions.ClientError as exc:
        meta, error = exc.response["ResponseMetadata"], exc.response
    variant = meta["HTTPHeaders"].get("x-amzn-invoked-production-variant")
    return variant, meta["HTTPStatusCode"], error


@pytest.mark.slow
def test_invocations_are_routed_by_weight_and_counted_per_variant(sm_project, sagemaker_aws):
    project = sm_project
    from mlops_kit.gitops.deploy import spec_for
    from mlops_kit.targets import for_environment
    from mlops_kit.train.training import load_dataset, train_and_register, training_params

    data = load_dataset("wine")
    for n in (4, 5):
        train_and_register(project, data, training_params(n_estimators=n))
    second = spec_for(project, "staging", 2)
    canary = spec_for(project, "staging", 1).model_copy(
        update={"candidate": Candidate(version="2", model_uri=second.model_uri, weight=30)}
    )
    with for_environment(project.settings, "staging") as target:
        target.apply(canary)
    runtime = sagemaker_aws.client("sagemaker-runtime")
    rows = [json.dumps({"dataframe_records": data.X_test.iloc[[n]].to_dict(orient="records")})
            for n in range(len(data.X_test))]  # fmt: skip
    assert isinstance(analysis.metrics_source(project, "staging"), CloudWatchSource)
    source = CloudWatchSource(project)
    source.begin("staging", MODEL)
    seen = collections.Counter(invoke(runtime, rows[n % len(rows)])[:2] for n in range(60))
    pinned = [invoke(runtime, rows[0], TargetVariant="v2")[:2] for _ in range(5)]
    variant, status, error = invoke(runtime, "{not json", TargetVariant="v1")
    stable = source.metrics_for("staging", MODEL, "1", "stable")
    candidate = source.metrics_for("staging", MODEL, "2", "candidate")
    print(f"\nrouted at 70/30: {dict(seen)}; {stable}; {candidate}")

    assert set(seen) == {("v1", 200), ("v2", 200)}  # both variants answer, by weight
    assert pinned == [("v2", 200)] * 5  # TargetVariant picks the variant
    # A request the container refuses is SageMaker's ModelError, a 4XX of the variant's.
    assert (variant, status, error["Error"]["Code"]) == ("v1", 424, "ModelError")
    assert error["OriginalStatusCode"] == 400
    assert "Received client error (400) from primary" in error["Error"]["Message"]
    assert (stable.requests, stable.errors) == (seen["v1", 200] + 1, 0)
    assert (candidate.requests, candidate.errors) == (seen["v2", 200] + 5, 0)
    assert stable.source == candidate.source == "cloudwatch"
    assert stable.mean_prediction is None and candidate.p99_ms and candidate.p99_ms > 0
    cloudwatch = sagemaker_aws.client("cloudwatch")
    window = {"StartTime": datetime.now(UTC) - timedelta(minutes=1),
              "EndTime": datetime.now(UTC) + timedelta(seconds=1)}  # fmt: skip
    dimensions = [{"Name": "EndpointName", "Value": ENDPOINT},
                  {"Name": "VariantName", "Value": "v1"}]  # fmt: skip
    metric = {"Namespace": "AWS/SageMaker", "Dimensions": dimensions}

    def statistic(name: str, stat: str) -> float:
        query = {"Metric": {**metric, "MetricName": name}, "Period": 60, "Stat": stat}
        answer = cloudwatch.get_metric_data(
            MetricDataQueries=[{"Id": "q", "MetricStat": query}], **window
        )
        return sum(answer["MetricDataResults"][0]["Values"])

    assert statistic("Invocation4XXErrors", "Sum") == 1
    assert statistic("ModelLatency", "p50") <= statistic("ModelLatency", "p99")
    assert statistic("ModelLatency", "p99") <= statistic("ModelLatency", "Maximum")

    # Weights summing to 0 leave nothing to route to; a named variant still answers.
    sm = sagemaker_aws.client("sagemaker")
    sm.update_endpoint_weights_and_capacities(
        EndpointName=ENDPOINT,
        DesiredWeightsAndCapacities=[
            {"VariantName": variant, "DesiredWeight": 0.0} for variant in ("v1", "v2")
        ],
    )
    _, status, error = invoke(runtime, rows[0])
    assert (status, error["Error"]["Code"]) == (400, "ValidationError")
    assert "no production variant with a weight above 0" in error["Error"]["Message"]
    assert invoke(runtime, rows[0], TargetVariant="v1")[:2] == ("v1", 200)
    _, status, error = invoke(runtime, rows[0], TargetVariant="v9")
    assert (status, error["Error"]["Code"]) == (400, "ValidationError")


def test_cloudwatch_out_of_reach_is_one_clear_error(project, monkeypatch):
    from mlops_kit.process.ports import free_ports

    (port,) = free_ports("127.0.0.1")  # nothing listens there
    environment = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_MAX_ATTEMPTS": "1",
                   "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}  # fmt: skip
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    source = CloudWatchSource(project)
    source.begin("staging", MODEL)
    failed = pytest.raises(CloudWatchUnavailable, match="variant v2 of endpoint " + ENDPOINT)
    with failed:
        source.metrics_for("staging", MODEL, "2", "candidate")


def test_without_boto3_the_error_names_the_extra(project, monkeypatch):
    import sys

    from mlops_kit.errors import MissingDependencyError

    monkeypatch.setitem(sys.modules, "boto3", None)
    source = CloudWatchSource(project)
    source.begin("staging", MODEL)
    with pytest.raises(MissingDependencyError, match=r"mlops-kit\[sagemaker\]"):
        source.metrics_for("staging", MODEL, "2", "candidate")

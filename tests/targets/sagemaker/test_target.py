"""The SageMaker target end to end, through the real boto3 clients on moto's server (loopback).

The seed pipeline (Jenkins + SageMaker BYO): TrainModel / TrainStatus as a training job whose
``model.tar.gz`` lands in the bucket and is registered in MLflow with lineage; DeployToTest as
the endpoint ``<model>-staging`` created, then updated blue/green through UpdateEndpoint;
SmokeTest through InvokeEndpoint against the model's local predictions; DeployToProd through
an approved promotion mirrored into SageMaker's model registry; clean-up through
``mlops-kit down --target sagemaker``. moto's missing APIs come from
tests/support/sagemaker_server.py (the ``sagemaker_aws`` fixture).
"""

from __future__ import annotations

import _thread
import hashlib
import sys
import threading

import pytest

from mlops_kit.deployment import DeploymentSpec
from mlops_kit.errors import MissingDependencyError, SmokeTestFailed, TrainingJobFailed
from mlops_kit.gitops import manifests
from mlops_kit.settings import ApprovalPolicy, EnvironmentSettings, load_settings
from mlops_kit.targets.sagemaker import names

MODEL = "wine-classifier"
POLICY = ApprovalPolicy(approvers=["bob", "carol"], four_eyes=True, min_approvals=1)


# -- no AWS needed -------------------------------------------------------------------------------


def test_names_satisfy_sagemaker_rules():
    valid = r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$"
    assert names.endpoint_name(MODEL, "staging") == "wine-classifier-staging"
    long = names.endpoint_name("m" * 60, "production")
    other = names.endpoint_name("m" * 60, "production-eu")
    import re

    for name in (long, other, names.resource_name("a_b", "c.d", "v1")):
        assert re.fullmatch(valid, name) and len(name) <= 63, name
    assert long != other
    assert names.resource_name("a_b", "c.d") == "a-b-c-d"
    assert names.version_of_variant(names.variant_name("12")) == "12"


def test_the_gitops_document_is_a_sagemaker_endpoint_and_round_trips():
    settings = load_settings(
        environments=[
            {"name": "staging", "kind": "staging", "target": "sagemaker"},
            {"name": "production", "kind": "production", "target": "local"},
        ]
    )
    assert manifests.format_for(settings, "staging") == "sagemaker"
    assert manifests.format_for(settings, "production") == "seldon-v1"
    spec = DeploymentSpec(
        environment="staging",
        model_name=MODEL,
        version="3",
        model_uri="s3://bucket/wine/training/job/output/model.tar.gz",
        run_id="abc",
        replicas=2,
        image="123.dkr.ecr.us-east-1.amazonaws.com/byo:1",
    )
    doc = manifests.load(manifests.dump(manifests.render(spec, "sagemaker")))
    assert doc["kind"] == "SageMakerEndpoint" and doc["spec"]["endpointName"] == MODEL + "-staging"
    variant = doc["spec"]["productionVariants"][0]
    assert (variant["variantName"], variant["initialInstanceCount"]) == ("v3", 2)
    assert manifests.spec_from_manifest(doc) == spec


def test_without_boto3_the_error_names_the_extra(monkeypatch):
    from mlops_kit.settings_sagemaker import SageMakerSettings
    from mlops_kit.targets.sagemaker.clients import client

    monkeypatch.setitem(sys.modules, "boto3", None)
    with pytest.raises(MissingDependencyError, match=r"mlops-kit\[sagemaker\]"):
        client(SageMakerSettings(), "sagemaker")


# -- on moto's server ----------------------------------------------------------------------------


@pytest.fixture
def sm_project(tmp_path, sagemaker_aws):
    """A project whose environments are SageMaker endpoints; the bucket exists."""
    from mlops_kit.project import Project
    from tests.support import seeded_registry, write_project
    from tests.support.signers import demo_signers

    seeded_registry(tmp_path / "state")  # the registry's schema is not what these are about
    project = Project.load(
        write_project(tmp_path),
        state_dir=tmp_path / "state",
        environments=[
            EnvironmentSettings(name="staging", kind="staging", target="sagemaker"),
            EnvironmentSettings(
                name="production", kind="production", target="sagemaker", approval=POLICY
            ),
        ],
        sagemaker={"poll_interval": 0.02, "alarm_names": ["wine-5xx"]},
    )
    sagemaker_aws.client("s3").create_bucket(Bucket=project.settings.sagemaker.bucket)
    demo_signers(project)
    return project


@pytest.mark.slow
def test_setup_checks_the_bucket_and_creates_the_model_package_group(sm_project, sagemaker_aws):
    from mlops_kit.targets.setup import setup

    sagemaker_aws.client("s3").delete_bucket(Bucket=sm_project.settings.sagemaker.bucket)
    report = setup(sm_project, target="sagemaker")
    assert report.ok, report.table()
    checks = {c.name: c.detail for c in report.checks}
    assert checks["S3 bucket"].endswith("(created)")
    assert MODEL in checks["SageMaker"]
    sm = sagemaker_aws.client("sagemaker")
    assert sm.describe_model_package_group(ModelPackageGroupName=MODEL)
    rows = {row["environment"]: row for row in report.environments}
    assert rows["production"]["endpoint"] == MODEL + "-production"
    again = setup(sm_project, target="sagemaker")
    assert again.ok and {c.name: c.detail for c in again.checks}["S3 bucket"].endswith("(exists)")


def train(project, n_estimators=10):
    from mlops_kit.targets.sagemaker.training_jobs import train_on_sagemaker
    from mlops_kit.train.training import load_dataset, training_params

    return train_on_sagemaker(
        project, load_dataset("wine"), training_params(n_estimators=n_estimators)
    )


@pytest.mark.slow
def test_a_training_job_puts_model_tar_gz_in_the_bucket_and_registers_it_with_lineage(
    sm_project, sagemaker_aws
):
    from mlops_kit.registry.client import Registry

    result = train(sm_project)
    tags = Registry(sm_project).get(result.version).tags
    job_arn = tags["mlops.sagemaker.training_job_arn"]
    sm, s3 = sagemaker_aws.client("sagemaker"), sagemaker_aws.client("s3")
    job = sm.describe_training_job(TrainingJobName=job_arn.rsplit("/", 1)[1])
    assert job["TrainingJobStatus"] == "Completed"
    archive = job["ModelArtifacts"]["S3ModelArtifacts"]
    assert archive.endswith(f"/{job['TrainingJobName']}/output/model.tar.gz")
    assert tags["mlops.sagemaker.model_data"] == archive
    bucket, _, key = archive.removeprefix("s3://").partition("/")
    assert s3.head_object(Bucket=bucket, Key=key)["ContentLength"] > 0
    # The data the job read is in the bucket, with the digest the version records.
    bucket, _, key = tags["mlops.data_s3_uri"].removeprefix("s3://").partition("/")
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    assert hashlib.sha256(body).hexdigest() == tags["mlops.data_sha256"]
    assert job["HyperParameters"]["n_estimators"] == "10"
    assert {c["ChannelName"] for c in job["InputDataConfig"]} == {"train", "validation"}
    assert tags["mlops.data_fingerprint"] and result.metrics["accuracy"] > 0.8
    # ... and is a model package waiting for approval in the group named like the model.
    packages = sm.list_model_packages(ModelPackageGroupName=MODEL)["ModelPackageSummaryList"]
    assert [p["ModelApprovalStatus"] for p in packages] == ["PendingManualApproval"]


@pytest.mark.slow
def test_a_failed_job_reports_sagemakers_reason(sm_project, sagemaker_aws):
    from mlops_kit.targets.sagemaker.training_jobs import wait_for_job

    sm = sagemaker_aws.client("sagemaker")
    sm.create_training_job(**_job_request(sm_project, "bad-job", {"n_estimators": "-5"}))
    with pytest.raises(TrainingJobFailed, match="bad-job ended Failed: .*n_estimators"):
        wait_for_job(sm, "bad-job", timeout=120, interval=0.05)


@pytest.mark.slow
def test_an_interrupted_wait_stops_the_job(sm_project, sagemaker_aws):
    from mlops_kit.targets.sagemaker.training_jobs import wait_for_job
    from tests.support.sagemaker_server import hold_jobs

    sm = sagemaker_aws.client("sagemaker")
    with hold_jobs():
        sm.create_training_job(**_job_request(sm_project, "long-job", {}))
        timer = threading.Timer(0.5, _thread.interrupt_main)  # Ctrl-C while it waits
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            wait_for_job(sm, "long-job", timeout=60, interval=0.05)
        timer.join()
    from mlops_kit.process import wait_until

    stopped = wait_until(
        lambda: (
            sm.describe_training_job(TrainingJobName="long-job")["TrainingJobStatus"] == "Stopped"
        ),
        timeout=10,
        what="the job to stop",
    )
    assert stopped
    with pytest.raises(sm.exceptions.ClientError, match="in status Stopped"):
        sm.stop_training_job(TrainingJobName="long-job")


def _job_request(project, name, hyperparameters):
    config = project.settings.sagemaker
    uri = f"s3://{config.bucket}/data/{name}/"
    return {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingImage": config.image_uri, "TrainingInputMode": "File"},
        "RoleArn": config.role_arn,
        "HyperParameters": hyperparameters,
        "InputDataConfig": [
            {
                "ChannelName": "train",
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri}},
            }  # fmt: skip
        ],
        "OutputDataConfig": {"S3OutputPath": f"s3://{config.bucket}/out"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
    }


@pytest.mark.slow
def test_update_endpoint_is_validated_like_sagemaker(sagemaker_aws):
    sm = sagemaker_aws.client("sagemaker")
    with pytest.raises(sm.exceptions.ClientError, match="Could not find endpoint"):
        sm.update_endpoint(EndpointName="nope", EndpointConfigName="nope")
    sm.create_model(ModelName="m", ExecutionRoleArn="arn:aws:iam::123456789012:role/r",
                    PrimaryContainer={"Image": "i"})  # fmt: skip
    variant = {"VariantName": "v1", "ModelName": "m", "InitialInstanceCount": 1,
               "InstanceType": "ml.m5.large"}  # fmt: skip
    sm.create_endpoint_config(EndpointConfigName="c1", ProductionVariants=[variant])
    sm.create_endpoint(EndpointName="e", EndpointConfigName="c1")
    with pytest.raises(sm.exceptions.ClientError, match="Could not find endpoint configuration"):
        sm.update_endpoint(EndpointName="e", EndpointConfigName="c2")
    sm.create_endpoint_config(EndpointConfigName="c2", ProductionVariants=[variant])
    sm.update_endpoint(EndpointName="e", EndpointConfigName="c2")
    described = sm.describe_endpoint(EndpointName="e")
    assert described["EndpointStatus"] == "Updating"
    assert described["PendingDeploymentSummary"]["EndpointConfigName"] == "c2"
    with pytest.raises(sm.exceptions.ClientError, match="Cannot update in-progress endpoint"):
        sm.update_endpoint(EndpointName="e", EndpointConfigName="c1")
    waiter_done = _until_in_service(sm, "e")
    assert waiter_done["EndpointConfigName"] == "c2"


def _until_in_service(sm, endpoint):
    from mlops_kit.process import wait_until

    def described():
        found = sm.describe_endpoint(EndpointName=endpoint)
        return found if found["EndpointStatus"] == "InService" else None

    return wait_until(described, timeout=10, interval=0.05, what=f"{endpoint} InService")


@pytest.mark.slow
def test_the_seed_pipeline_train_deploy_smoke_promote_clean_up(sm_project, sagemaker_aws):
    from mlops_kit.cli import main
    from mlops_kit.gitops.deploy import deploy, smoke
    from mlops_kit.gitops.repository import GitOpsRepo
    from mlops_kit.promote.promotion import Promotions
    from mlops_kit.registry.client import Registry
    from mlops_kit.targets import for_environment
    from tests.support.sagemaker_server import UPDATES
    from tests.support.signers import key

    sm = sagemaker_aws.client("sagemaker")
    endpoint = MODEL + "-staging"
    # TrainModel + TrainStatus, then DeployToTest: the endpoint is created.
    first = train(sm_project, n_estimators=8)
    deployed = deploy(sm_project, "staging", first.version, actor="alice")
    assert deployed.endpoint.endswith(f"/endpoints/{endpoint}/invocations")
    assert sm.describe_endpoint(EndpointName=endpoint)["EndpointStatus"] == "InService"
    assert not UPDATES
    text = GitOpsRepo.from_settings(sm_project.settings).read_dir("environments/staging")
    doc = manifests.load(text[f"environments/staging/{MODEL}.yaml"])
    assert doc["kind"] == "SageMakerEndpoint" and doc["spec"]["endpointName"] == endpoint
    # SmokeTest: InvokeEndpoint answers as the registered model does locally.
    result = smoke(sm_project, "staging", first.version)
    assert result.passed and result.served_version == first.version
    # A new version reaches the same endpoint through UpdateEndpoint, blue/green.
    second = train(sm_project, n_estimators=12)
    deploy(sm_project, "staging", second.version, actor="alice")
    (update,) = UPDATES
    described = sm.describe_endpoint(EndpointName=endpoint)
    assert described["EndpointConfigName"] == update["EndpointConfigName"]
    assert f"-v{second.version}-" in update["EndpointConfigName"]
    policy = update["DeploymentConfig"]["BlueGreenUpdatePolicy"]
    assert policy["TrafficRoutingConfiguration"]["Type"] == "ALL_AT_ONCE"
    alarms = update["DeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"]
    assert alarms == [{"AlarmName": "wine-5xx"}]
    configs = [c["EndpointConfigName"] for c in sm.list_endpoint_configs()["EndpointConfigs"]]
    assert configs == [update["EndpointConfigName"]]  # the replaced version's config is gone
    assert smoke(sm_project, "staging", second.version).served_version == second.version
    with pytest.raises(SmokeTestFailed, match="served version is '2', expected '1'"):
        smoke(sm_project, "staging", first.version)
    smoke(sm_project, "staging", second.version)
    staging = for_environment(sm_project.settings, "staging").status(MODEL)
    assert staging.ready and staging.version == second.version

    # DeployToProd: only through an approved promotion, mirrored into SageMaker's registry.
    promotions = Promotions(sm_project)
    request = promotions.open(second.version, requested_by="alice")
    done = promotions.approve(request.id, "bob", "ship it", signing_key=key(sm_project, "bob"))
    assert done.status == "rolled_out"
    production = for_environment(sm_project.settings, "production").status(MODEL)
    assert production.ready and production.version == second.version
    assert _approval(sm, second.version) == ("Approved", "approved by bob: ship it")
    mirrored = Registry(sm_project).get(second.version).tags["mlops.sagemaker.approval"]
    assert mirrored.startswith("approved (arn:aws:sagemaker:")
    # A rejected request is mirrored too.
    deploy(sm_project, "staging", first.version, actor="alice")
    smoke(sm_project, "staging", first.version)
    request = promotions.open(first.version, requested_by="alice")
    promotions.reject(request.id, "carol", "older", signing_key=key(sm_project, "carol"))
    assert _approval(sm, first.version) == ("Rejected", "rejected by carol: older")

    # Clean-up: everything the toolkit made goes, nothing else; twice is fine.
    sm.create_model(ModelName="not-ours", ExecutionRoleArn="arn:aws:iam::123456789012:role/r",
                    PrimaryContainer={"Image": "i"})  # fmt: skip
    config = str(sm_project.settings.project_file)
    assert main(["down", "--target", "sagemaker", "--config", config]) == 0
    assert sm.list_endpoints()["Endpoints"] == []
    assert sm.list_endpoint_configs()["EndpointConfigs"] == []
    assert [m["ModelName"] for m in sm.list_models()["Models"]] == ["not-ours"]
    assert main(["down", "--target", "sagemaker", "--config", config]) == 0


@pytest.mark.slow
def test_a_failed_endpoint_is_reported_then_repaired_and_an_alarm_rolls_an_update_back(
    sm_project, sagemaker_aws
):
    from mlops_kit.errors import TargetError
    from mlops_kit.gitops.deploy import spec_for
    from mlops_kit.targets import for_environment
    from mlops_kit.train.training import load_dataset, train_and_register, training_params
    from tests.support.sagemaker_server import ALARMS, fail_endpoint

    data = load_dataset("wine")
    for n in (5, 6):
        train_and_register(sm_project, data, training_params(n_estimators=n))
    target = for_environment(sm_project.settings, "staging")
    assert target.apply(spec_for(sm_project, "staging", 1)).version == "1"
    account = sagemaker_aws.client("sts").get_caller_identity()["Account"]
    fail_endpoint(account, MODEL + "-staging", "instances failed their health checks")
    status = target.status(MODEL)
    assert not status.ready and status.version is None
    assert "Failed: instances failed their health checks" in status.detail
    repaired = target.apply(spec_for(sm_project, "staging", 1))  # deleted and created again
    assert repaired.ready and repaired.version == "1"
    ALARMS.add("wine-5xx")  # the alarm the settings name fires during the next update
    with pytest.raises(TargetError, match="rolled the update back"):
        target.apply(spec_for(sm_project, "staging", 2))
    assert target.status(MODEL).version == "1"  # the old version kept answering
    ALARMS.clear()
    assert target.apply(spec_for(sm_project, "staging", 2)).version == "2"


def _approval(sm, version):
    from mlops_kit.targets.sagemaker.model_packages import find_package

    package = find_package(sm, MODEL, version)
    assert package is not None
    return package["ModelApprovalStatus"], package.get("ApprovalDescription")

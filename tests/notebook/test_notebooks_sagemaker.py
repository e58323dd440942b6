"""Notebooks 01–03 with ``target="sagemaker"``: papermill kernels against moto's server.

The kernels reach the loopback moto server of the test process through the standard AWS
variables; the server serves what moto's SageMaker lacks from tests/support/sagemaker_server.py
(training jobs that train, InvokeEndpoint answered by the deployed model). Set-up creates the
bucket and the model package group, notebook 02 trains in a SageMaker training job, deploys
staging's endpoint and smoke-tests it through InvokeEndpoint, notebook 03's approval rolls
production's endpoint out and is mirrored into SageMaker's model registry.
"""

from __future__ import annotations

import pytest
import yaml

from mlops_kit.notebook import runner
from tests.support import NOTEBOOKS, seeded_registry, write_project
from tests.support.signers import demo_signers

pytestmark = pytest.mark.slow  # papermill kernels

MODEL = "wine-classifier"


def test_notebooks_01_to_03_deploy_and_promote_on_sagemaker(tmp_path, monkeypatch, sagemaker_aws):
    from mlops_kit.gitops.repository import GitOpsRepo
    from mlops_kit.project import Project
    from mlops_kit.promote.promotion import Promotions
    from mlops_kit.registry.client import Registry
    from mlops_kit.targets.sagemaker.model_packages import find_package

    state = tmp_path / "state"
    seeded_registry(state)  # the registry's schema is not what this is about
    monkeypatch.setenv("MLOPS_KIT_CONFIG", str(write_project(tmp_path)))
    monkeypatch.setenv("MLOPS_KIT_STATE_DIR", str(state))
    monkeypatch.setenv("MLOPS_KIT_ACTOR", "alice")
    monkeypatch.setenv("MLOPS_KIT_SAGEMAKER__POLL_INTERVAL", "0.05")
    keys = demo_signers(Project.load(state_dir=state))
    names = [str(NOTEBOOKS / f"{n}.ipynb") for n in
             ("01_setup_cluster", "02_create_pipeline", "03_promote_model")]  # fmt: skip
    params = {"target": "sagemaker", "n_estimators": 20, "approve": True, "approver": "bob",
              "signing_key": str(keys["bob"])}  # fmt: skip
    runs = runner.run_notebooks(names, params, output_dir=tmp_path / "build", progress_bar=False)
    assert [r.output.name for r in runs] == [n.rsplit("/", 1)[-1] for n in names]

    sm = sagemaker_aws.client("sagemaker")
    for env in ("staging", "production"):
        endpoint = sm.describe_endpoint(EndpointName=f"{MODEL}-{env}")
        assert endpoint["EndpointStatus"] == "InService"
        assert endpoint["ProductionVariants"][0]["VariantName"] == "v1"
    project = Project.load(state_dir=state)
    repo = GitOpsRepo.from_settings(project.settings)
    committed = yaml.safe_load(repo.read_file("main", f"environments/production/{MODEL}.yaml"))
    assert committed["kind"] == "SageMakerEndpoint"
    assert committed["spec"]["endpointName"] == f"{MODEL}-production"
    version = Registry(project).get(1)
    # Notebook 02 trained in a SageMaker training job: its lineage names the job and the data.
    job = version.tags["mlops.sagemaker.training_job_arn"].rsplit("/", 1)[1]
    assert sm.describe_training_job(TrainingJobName=job)["TrainingJobStatus"] == "Completed"
    assert version.tags["mlops.data_s3_uri"].startswith("s3://")
    assert version.tags["mlops.smoke.staging"] == "passed"
    assert version.tags["mlops.smoke.production"] == "passed"
    assert [r.status for r in Promotions(project).all()] == ["rolled_out"]
    package = find_package(sm, MODEL, "1")
    assert package is not None
    assert package["ModelApprovalStatus"] == "Approved"
    assert package["ApprovalDescription"].startswith("approved by bob")

    # The training job's model.tar.gz is in the project's bucket.
    project_bucket = project.settings.sagemaker.bucket
    keys = [o["Key"] for o in sagemaker_aws.client("s3").list_objects_v2(
        Bucket=project_bucket)["Contents"]]  # fmt: skip
    assert any(key.endswith(f"{job}/output/model.tar.gz") for key in keys), keys

    # Notebook 01's clean-up section: nothing the toolkit created is left on SageMaker.
    runner.run_notebooks(names[:1], {"target": "sagemaker", "teardown": True},
                         output_dir=tmp_path / "teardown", progress_bar=False)  # fmt: skip
    assert sm.list_endpoints()["Endpoints"] == []
    assert sm.list_endpoint_configs()["EndpointConfigs"] == []
    assert sm.list_models()["Models"] == []

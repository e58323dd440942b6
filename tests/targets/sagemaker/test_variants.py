"""A spec's candidate on SageMaker, through the real boto3 client on moto's server (loopback):
a second production variant whose weight moves in place with UpdateEndpointWeightsAndCapacities
(implemented by moto), and a shadow variant (kept by tests/support/sagemaker_server.py).
"""

from __future__ import annotations

import pytest
import yaml

from mlops_kit.deployment import Candidate, DeploymentSpec
from mlops_kit.gitops import manifests
from mlops_kit.settings import EnvironmentSettings

MODEL = "wine-classifier"
ENDPOINT = MODEL + "-staging"
PATH = f"environments/staging/{MODEL}.yaml"


def stable(version: str = "1") -> DeploymentSpec:
    return DeploymentSpec(
        environment="staging", model_name=MODEL, version=version,
        model_uri=f"s3://models/{MODEL}/{version}/model.tar.gz", run_id=f"run{version}",
    )  # fmt: skip


def with_candidate(weight: int = 10, **fields) -> DeploymentSpec:
    candidate = Candidate(
        version="2", model_uri=f"s3://models/{MODEL}/2/model.tar.gz", run_id="run2",
        weight=weight, **fields,
    )  # fmt: skip
    return stable().model_copy(update={"candidate": candidate})


@pytest.fixture
def project(tmp_path, sagemaker_aws):
    from mlops_kit.project import Project
    from tests.support import write_project

    project = Project.load(
        write_project(tmp_path),
        state_dir=tmp_path / "state",
        environments=[
            EnvironmentSettings(name="staging", kind="staging", target="sagemaker"),
            EnvironmentSettings(name="production", kind="production", target="sagemaker"),
        ],
        sagemaker={"poll_interval": 0.02},
    )
    sagemaker_aws.client("s3").create_bucket(Bucket=project.settings.sagemaker.bucket)
    return project


def _weights(described) -> dict[str, float]:
    return {v["VariantName"]: v.get("CurrentWeight", 0.0) for v in described["ProductionVariants"]}


@pytest.mark.slow
def test_a_canary_10_50_100_moves_variant_weights_in_place(project, sagemaker_aws):
    from mlops_kit.gitops.repository import GitOpsRepo
    from mlops_kit.gitops.sync import sync
    from mlops_kit.targets import for_environment
    from tests.support.sagemaker_server import UPDATES

    sm = sagemaker_aws.client("sagemaker")
    repo = GitOpsRepo.from_settings(project.settings)
    repo.ensure()
    seen, configs = [], []
    with for_environment(project.settings, "staging") as target:
        for step in (None, 10, 50, 100, "promoted"):
            spec = {None: stable(), "promoted": stable("2")}.get(step) or with_candidate(step)
            repo.write(spec, actor="rollout")
            assert sync(project, "staging", repo=repo, target=target).changed, step
            assert not sync(project, "staging", repo=repo, target=target).changed
            committed = yaml.safe_load(repo.read_file("main", PATH))
            assert manifests.spec_from_manifest(committed) == spec
            described = sm.describe_endpoint(EndpointName=ENDPOINT)
            configs.append(described["EndpointConfigName"])
            status = target.status(MODEL)
            assert status.ready and status.version == spec.version
            assert status.candidate == spec.candidate
            committed_weights = {
                v["variantName"]: v["initialVariantWeight"]
                for v in committed["spec"]["productionVariants"]
            }
            seen.append((step, _weights(described), committed_weights))
    assert seen == [
        (None, {"v1": 1.0}, {"v1": 100}),
        (10, {"v1": 90.0, "v2": 10.0}, {"v1": 90, "v2": 10}),
        (50, {"v1": 50.0, "v2": 50.0}, {"v1": 50, "v2": 50}),
        (100, {"v1": 0.0, "v2": 100.0}, {"v1": 0, "v2": 100}),
        ("promoted", {"v2": 1.0}, {"v2": 100}),
    ]
    # One config for the whole canary: the steps moved weights, they did not redeploy.
    assert configs[1] == configs[2] == configs[3] != configs[0]
    # UpdateEndpoint only to add the candidate's variant and to promote it.
    assert [u["EndpointConfigName"] for u in UPDATES] == [configs[1], configs[4]]
    assert {c["EndpointConfigName"] for c in sm.list_endpoint_configs()["EndpointConfigs"]} == {
        configs[4]
    }  # the pair config and the candidate's model are pruned once promoted
    assert len(sm.list_models()["Models"]) == 1


@pytest.mark.slow
def test_a_shadow_variant_mirrors_and_goes_away(project, sagemaker_aws):
    from mlops_kit.targets import for_environment

    sm = sagemaker_aws.client("sagemaker")
    shadow = with_candidate(0, mirror=True, mirror_percent=30)
    with for_environment(project.settings, "staging") as target:
        target.apply(stable())
        status = target.apply(shadow)
        assert status.version == "1" and status.candidate == shadow.candidate
        assert "v1 at 100%, v2 shadow at 30%" in target.status(MODEL).detail
        described = sm.describe_endpoint(EndpointName=ENDPOINT)
        assert _weights(described) == {"v1": 100.0}
        (mirrored,) = described["ShadowProductionVariants"]
        assert (mirrored["VariantName"], mirrored["CurrentWeight"]) == ("v2", 30.0)
        config = sm.describe_endpoint_config(EndpointConfigName=described["EndpointConfigName"])
        assert [v["VariantName"] for v in config["ShadowProductionVariants"]] == ["v2"]
        back = target.apply(stable())
        assert back.candidate is None and back.version == "1"
        assert "ShadowProductionVariants" not in sm.describe_endpoint(EndpointName=ENDPOINT)

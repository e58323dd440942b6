"""The artifact store: the setting, and models kept in S3 (moto's server on loopback).

The S3 tests use only the standard AWS variables the ``aws`` fixture sets (``AWS_ENDPOINT_URL``
and fake credentials), as a user of MinIO would: nothing S3-specific is configured for MLflow.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from mlops_kit import artifacts
from mlops_kit.errors import ConfigError, MissingDependencyError
from mlops_kit.settings import load_settings
from tests.support import seeded_registry, write_project
from tests.support.crds import validate

BUCKET = "ml-models"
STORE = f"s3://{BUCKET}/mlops-demo"


# -- the setting ---------------------------------------------------------------------------


def test_default_store_is_the_state_directory(project):
    assert project.settings.artifact_store is None
    assert project.artifact_uri == (project.state_dir / "artifacts").as_uri()
    assert project.artifact_root == project.state_dir / "artifacts"


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("s3://ml-models/team/wine/", "s3://ml-models/team/wine"),
        ("s3://ml-models", "s3://ml-models"),
        ("file:///srv/artifacts", "file:///srv/artifacts"),
        ("/srv/artifacts", "/srv/artifacts"),
    ],
)
def test_store_values_are_normalised(tmp_path, given, stored):
    settings = load_settings(write_project(tmp_path, artifact_store=given))
    assert settings.artifact_store == stored


def test_relative_store_is_anchored_to_the_project_file(tmp_path, monkeypatch):
    config = write_project(tmp_path / "repo", artifact_store="models")
    monkeypatch.chdir(tmp_path)
    from mlops_kit.project import Project

    project = Project.load(config)
    assert project.settings.artifact_store == str(tmp_path / "repo" / "models")
    assert project.artifact_root == tmp_path / "repo" / "models"
    assert project.artifact_uri == (tmp_path / "repo" / "models").as_uri()


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("gs://bucket/prefix", "unsupported scheme 'gs'"),
        ("https://minio.local/bucket", "unsupported scheme 'https'"),
        ("s3://Bad_Bucket/prefix", "is not an S3 bucket name"),
        ("s3:///prefix", "is not an S3 bucket name"),
        ("s3://bucket/prefix?x=1", "no query"),
        ("file://otherhost/srv", "names another host"),
        ("", "must not be empty"),
    ],
)
def test_bad_store_is_a_config_error_naming_the_field(tmp_path, value, problem):
    with pytest.raises(ConfigError, match=rf"artifact_store: .*{problem}"):
        load_settings(write_project(tmp_path, artifact_store=value))


def test_bad_store_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MLOPS_KIT_ARTIFACT_STORE", "azure://container/x")
    with pytest.raises(ConfigError, match="artifact_store: .*unsupported scheme 'azure'"):
        load_settings(write_project(tmp_path))


def test_s3_store_without_boto3_names_the_extra(tmp_path, monkeypatch):
    from mlops_kit.project import Project

    monkeypatch.setitem(sys.modules, "boto3", None)
    project = Project.load(write_project(tmp_path, artifact_store=STORE))
    assert project.artifact_root is None
    with pytest.raises(MissingDependencyError, match=r"pip install 'mlops-kit\[s3\]'"):
        project.experiment_id()


def test_an_experiment_keeps_its_location_and_says_so(tmp_path, caplog):
    from mlops_kit.project import Project

    before = Project.load(write_project(tmp_path), state_dir=tmp_path / "state")
    experiment = before.experiment_id()
    after = Project.load(
        write_project(tmp_path, artifact_store=STORE), state_dir=tmp_path / "state"
    )
    with caplog.at_level("WARNING", logger="mlops_kit.project"):
        assert after.experiment_id() == experiment
    assert f"not in artifact_store {STORE}" in caplog.text


# -- models in S3 --------------------------------------------------------------------------


@pytest.fixture
def s3_project(tmp_path, aws, monkeypatch):
    """A project whose artifacts go to a fresh bucket of the loopback moto server."""
    from mlops_kit.project import Project

    # Only the standard AWS variables: MLflow's own endpoint variable stays unset.
    monkeypatch.delenv("MLFLOW_S3_ENDPOINT_URL", raising=False)
    aws.client("s3").create_bucket(Bucket=BUCKET)
    seeded_registry(tmp_path / "state")  # the registry's schema is not what these are about
    return Project.load(write_project(tmp_path, artifact_store=STORE), state_dir=tmp_path / "state")


@pytest.fixture
def s3_registered(s3_project, wine):
    from mlops_kit.train.training import train_and_register, training_params

    return s3_project, train_and_register(s3_project, wine, training_params(n_estimators=10))


def keys(aws, prefix: str = "") -> list[str]:
    pages = aws.client("s3").get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


def test_registered_model_lives_in_the_bucket(s3_registered, aws):
    project, result = s3_registered
    stored = keys(aws, "mlops-demo/")
    assert [k for k in stored if k.endswith("/MLmodel")], stored
    assert any(k.endswith("model.skops") or k.endswith("model.pkl") for k in stored), stored
    version = project.client.get_model_version(project.model_name, result.version)
    location = project.client.get_model_version_download_uri(project.model_name, result.version)
    assert location.startswith(f"{STORE}/"), location
    source = version.source
    if source.startswith("models:/"):  # MLflow 3: the logged model, stored in the bucket
        source = project.client.get_logged_model(source.removeprefix("models:/")).artifact_location
    assert source == location
    # Nothing was written to the state directory's artifact folder.
    assert not (project.state_dir / "artifacts").exists()


def test_spec_names_the_s3_model_and_its_secret(s3_registered, aws):
    from mlops_kit.gitops.deploy import spec_for

    project, result = s3_registered
    spec = spec_for(project, "staging", result.version)
    assert spec.model_uri.startswith(f"{STORE}/"), spec.model_uri
    assert spec.storage_secret == "mlops-kit-s3"
    prefix = spec.model_uri.removeprefix(f"s3://{BUCKET}/")
    assert f"{prefix}/MLmodel" in keys(aws, prefix)


@pytest.mark.parametrize("fmt", ["seldon-v1", "seldon-v2"])
def test_manifests_carry_the_s3_uri_and_secret(s3_registered, fmt):
    from mlops_kit.gitops import manifests
    from mlops_kit.gitops.deploy import spec_for

    project, result = s3_registered
    spec = spec_for(project, "staging", result.version)
    doc = manifests.render(spec, fmt, namespace="mlops-demo-staging")
    validate(doc)
    if fmt == "seldon-v1":
        (predictor,) = doc["spec"]["predictors"]
        assert predictor["graph"]["modelUri"] == spec.model_uri
        assert predictor["graph"]["envSecretRefName"] == "mlops-kit-s3"
    else:
        assert doc["spec"]["storageUri"] == spec.model_uri
        assert doc["spec"]["secretName"] == "mlops-kit-s3"
    assert manifests.spec_from_manifest(manifests.load(manifests.dump(doc))) == spec


def test_local_models_get_no_secret(registered):
    from mlops_kit.gitops.deploy import spec_for

    project, result = registered
    spec = spec_for(project, "staging", result.version)
    assert Path(spec.model_uri).is_dir()
    assert spec.storage_secret is None


def test_download_is_cached_and_complete(s3_registered, tmp_path):
    from mlops_kit.gitops.deploy import spec_for

    project, result = s3_registered
    uri = spec_for(project, "staging", result.version).model_uri
    cache = tmp_path / "cache"
    path = artifacts.download(uri, cache)
    assert (path / "MLmodel").is_file()
    assert artifacts.download(uri, cache) == path
    assert [p.name for p in cache.iterdir()] == [path.parent.name]  # no partial copies left


def test_build_context_of_a_version_in_s3(s3_registered):
    from mlops_kit.targets import build_context

    project, result = s3_registered
    context = build_context.for_version(project, result.version, "embedded", image="wine:emb")
    assert (context.path / "model" / "MLmodel").is_file()


def test_download_of_a_missing_model_is_a_target_error(s3_project, tmp_path):
    from mlops_kit.errors import TargetError
    from mlops_kit.targets.local.mlserver import local_path

    with pytest.raises(TargetError, match="could not download the model at s3://"):
        local_path(f"s3://{BUCKET}/nothing/here", tmp_path / "cache")
    assert not [p for p in (tmp_path / "cache").iterdir() if not p.name.startswith(".")]


@pytest.mark.slow
def test_local_target_serves_a_version_from_s3(s3_registered, aws):
    """Deploy to staging (GitOps commit, sync, MLServer) and smoke-test against the model."""
    from mlops_kit.gitops.deploy import deploy, smoke
    from mlops_kit.gitops.repository import GitOpsRepo
    from mlops_kit.targets.local import stop_all

    project, result = s3_registered
    try:
        deployed = deploy(project, "staging", result.version)
        assert deployed.version == result.version
        (committed,) = GitOpsRepo.from_settings(project.settings).read("staging")
        assert committed.model_uri.startswith(f"{STORE}/")
        assert committed.storage_secret == "mlops-kit-s3"
        # staging answers with the registered model's own predictions
        assert smoke(project, "staging").passed
        cache = project.state_dir / "model-cache"
        assert [p for p in cache.iterdir() if (p / "model" / "MLmodel").is_file()]
    finally:
        stop_all(project.state_dir)


def test_ui_serves_no_artifacts_and_names_the_store(tmp_path):
    from mlops_kit.cli.commands_tools import ui_command
    from mlops_kit.project import Project

    project = Project.load(write_project(tmp_path, artifact_store=STORE))
    cmd = ui_command(project, 5123)
    assert cmd[cmd.index("--default-artifact-root") + 1] == STORE
    assert "--no-serve-artifacts" in cmd


def test_storage_secret_command_prints_the_template_for_the_namespace(tmp_path, capsys):
    from mlops_kit.cli import main
    from mlops_kit.gitops import manifests

    config = write_project(tmp_path, artifact_store=STORE, gitops={"manifest": "seldon-v2"})
    assert (
        main(["--config", str(config), "storage-secret", "staging", "--region", "eu-west-1"]) == 0
    )
    doc = manifests.load(capsys.readouterr().out)
    assert (doc["kind"], doc["metadata"]["name"]) == ("Secret", "mlops-kit-s3")
    assert doc["metadata"]["namespace"] == "mlops-demo-staging"
    assert '"region": "eu-west-1"' in doc["stringData"]["s3"]


@pytest.mark.slow
def test_registry_server_records_s3_locations(s3_project, aws, monkeypatch):
    """Through the embedded ``mlflow server``: clients write to S3 themselves, no proxy URIs."""
    for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        monkeypatch.delenv(name, raising=False)  # served() sets them: restored afterwards
    from mlops_kit.registry import server as registry_server
    from mlops_kit.train.training import load_dataset, train_and_register, training_params
    from tests.support import mlflow_globals_restored

    with mlflow_globals_restored():
        try:
            info = registry_server.start(s3_project)
            assert info.artifact_root == STORE
            served = registry_server.served(s3_project)
            result = train_and_register(
                served, load_dataset("iris"), training_params(n_estimators=5)
            )
            uri = served.client.get_model_version_download_uri(result.model_name, result.version)
            assert uri.startswith(f"{STORE}/"), uri
            prefix = uri.removeprefix(f"s3://{BUCKET}/")
            assert f"{prefix}/MLmodel" in keys(aws, prefix)
        finally:
            registry_server.stop(s3_project)

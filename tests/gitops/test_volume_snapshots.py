"""VolumeSnapshot manifests per version: valid against the official CSI snapshot CRD."""

import pytest
import yaml

from mlops_kit.errors import ConfigError
from mlops_kit.gitops import volume_snapshots
from mlops_kit.gitops.repository import GitOpsRepo
from mlops_kit.settings import load_settings
from tests.support import crds, write_project

DIGEST = "ab" * 32


def settings_with(tmp_path, **volume):
    return load_settings(write_project(tmp_path, project="shop", pipeline={"volume": volume}))


@pytest.mark.parametrize(
    "volume",
    [
        {"claim": "training-data"},
        {"claim": "data", "namespace": "ml", "snapshot_class": "csi-snap"},
    ],
)
def test_the_manifest_validates_against_the_official_crd(tmp_path, volume):
    settings = settings_with(tmp_path, **volume)
    doc = volume_snapshots.render(settings, "7", DIGEST)
    crds.validate(doc)
    # What the CRD states as CEL rules (the JSON-schema check cannot): exactly one source,
    # and a class name that is not empty when given.
    assert list(doc["spec"]["source"]) == ["persistentVolumeClaimName"]
    assert doc["spec"].get("volumeSnapshotClassName", "x") != ""
    assert doc["metadata"]["name"] == "wine-classifier-v7"
    assert doc["metadata"]["namespace"] == volume.get("namespace", "shop-staging")
    assert doc["metadata"]["annotations"]["mlops-kit.io/snapshot-digest"] == DIGEST


def test_a_schema_violation_would_be_caught(tmp_path):
    import jsonschema

    doc = volume_snapshots.render(settings_with(tmp_path, claim="data"), "1", DIGEST)
    doc["spec"]["source"]["claimName"] = "data"  # not a field of the CRD
    with pytest.raises(jsonschema.ValidationError):
        crds.validate(doc)


def test_without_a_volume_there_is_no_manifest(tmp_path):
    settings = load_settings(write_project(tmp_path))
    assert volume_snapshots.render(settings, "1", DIGEST) is None
    repo = GitOpsRepo(tmp_path / "g")
    assert volume_snapshots.commit(repo, settings, "1", DIGEST, actor="a") is None


def test_a_bad_claim_name_fails_at_load_time_naming_the_field(tmp_path):
    with pytest.raises(ConfigError, match="pipeline.volume.claim"):
        settings_with(tmp_path, claim="Not_A_Name")


def test_each_version_is_committed_to_the_gitops_repository(tmp_path):
    settings = settings_with(tmp_path, claim="data")
    repo = GitOpsRepo(tmp_path / "gitops")
    sha = volume_snapshots.commit(repo, settings, "3", DIGEST, actor="alice")
    assert sha is not None
    text = repo.read_file(repo.branch, "volume-snapshots/wine-classifier/wine-classifier-v3.yaml")
    crds.validate(yaml.safe_load(text))
    (entry,) = repo.history(limit=1)
    assert "v3" in entry.subject and entry.trailers["Model-Version"] == "3"

"""The store in the artifact store when that is S3 (moto on loopback); VolumeSnapshots in GitOps."""

import pytest
import yaml

from mlops_kit.errors import SnapshotCorrupt
from mlops_kit.gitops.repository import GitOpsRepo
from mlops_kit.pipeline import snapshots
from mlops_kit.pipeline import train as pipeline
from mlops_kit.pipeline.store import ContentStore
from mlops_kit.project import Project
from mlops_kit.train.training import training_params
from tests.support import crds, write_project

BUCKET = "team-models"


@pytest.fixture
def s3_project(tmp_path, aws, monkeypatch):
    monkeypatch.delenv("MLFLOW_S3_ENDPOINT_URL", raising=False)
    aws.client("s3").create_bucket(Bucket=BUCKET)
    config = write_project(tmp_path, artifact_store=f"s3://{BUCKET}/demo")
    return Project.load(config, state_dir=tmp_path / "state")


def test_with_a_remote_artifact_store_the_cache_and_snapshots_live_in_the_bucket(
    s3_project, aws, tmp_path
):
    store = ContentStore.for_project(s3_project)
    assert store.uri == f"s3://{BUCKET}/demo/pipeline"
    first = pipeline.run(s3_project, training_params(n_estimators=5), progress=False)
    keys = [o["Key"] for o in aws.client("s3").list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert any(k.startswith("demo/pipeline/objects/") for k in keys)
    assert any(k.startswith("demo/pipeline/steps/register/") for k in keys)
    assert not (tmp_path / "state" / "pipeline").exists()
    again = pipeline.run(s3_project, training_params(n_estimators=5), progress=False)
    assert len(again.record.cached) == 6
    written = snapshots.restore(s3_project, 1, tmp_path / "out")
    assert [p.name for p in written] == ["wine.csv"]
    # An object altered in the bucket is refused by its digest.
    digest = first.digests()["inputs"]
    s3 = aws.client("s3")
    s3.put_object(Bucket=BUCKET, Key=f"demo/pipeline/objects/{digest[:2]}/{digest}", Body=b"x")
    with pytest.raises(SnapshotCorrupt):
        store.get(digest)


def test_data_on_a_volume_gets_a_volume_snapshot_per_version(tmp_path):
    config = write_project(tmp_path, pipeline={"volume": {"claim": "training-data"}})
    project = Project.load(config, state_dir=tmp_path / "state")
    result = pipeline.run(project, training_params(n_estimators=5), progress=False)
    version = result.output("registration").version
    repo = GitOpsRepo.from_settings(project.settings)
    path = f"volume-snapshots/wine-classifier/wine-classifier-v{version}.yaml"
    doc = yaml.safe_load(repo.read_file(repo.branch, path))
    crds.validate(doc)
    assert doc["spec"]["source"] == {"persistentVolumeClaimName": "training-data"}
    digest = project.client.get_model_version("wine-classifier", version).tags[snapshots.TAG]
    assert doc["metadata"]["annotations"]["mlops-kit.io/snapshot-digest"] == digest

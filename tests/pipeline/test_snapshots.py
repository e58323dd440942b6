"""Snapshots tied to versions: list, restore byte-identical, reproduce, detect corruption."""

import hashlib
import subprocess

import pytest

from mlops_kit.cli import main
from mlops_kit.errors import ConfigError, SnapshotCorrupt, SnapshotNotFound
from mlops_kit.pipeline import snapshots
from mlops_kit.pipeline.reproduce import reproduce
from mlops_kit.pipeline.store import ContentStore
from mlops_kit.project import Project
from mlops_kit.train.training import train_and_register, training_params
from tests.support import seeded_registry, write_project


def sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def registered(tmp_path):
    """Version 1 of a regression model trained on a directory of two CSV files."""
    from sklearn.datasets import load_diabetes

    frame = load_diabetes(as_frame=True).frame
    (tmp_path / "data").mkdir()
    frame.iloc[:200].to_csv(tmp_path / "data" / "part-1.csv", index=False)
    frame.iloc[200:].to_csv(tmp_path / "data" / "part-2.csv", index=False)
    (tmp_path / "ridge_train.py").write_text(
        "from sklearn.linear_model import Ridge\n\n\n"
        "def fit(data, params):\n    return Ridge().fit(data.X_train, data.y_train)\n"
    )
    config = write_project(
        tmp_path,
        model_name="diabetes",
        training={"data": {"path": "data"}, "entrypoint": "ridge_train:fit"},
        gates={"metric": "r2", "min_value": 0.3},
        state_dir="state",
    )
    project = Project.load(config)
    seeded_registry(project.state_dir)  # the registry's schema is not what these are about
    from mlops_kit.pipeline import train

    train.run(project, training_params(project.settings.training), progress=False)
    return project, config


def test_restore_writes_the_inputs_back_byte_identical(registered, tmp_path, capsys):
    project, config = registered
    out = tmp_path / "restored"
    assert main(["--config", str(config), "restore", "1", "--to", str(out)]) == 0
    for name in ("part-1.csv", "part-2.csv"):
        assert sha(out / name) == sha(tmp_path / "data" / name)
    assert "restored 2 file(s) of v1" in capsys.readouterr().out
    # A non-empty directory is refused unless forced.
    assert main(["--config", str(config), "restore", "1", "--to", str(out)]) == 2
    assert "is not empty" in capsys.readouterr().err
    assert main(["--config", str(config), "restore", "1", "--to", str(out), "--force"]) == 0


def test_reproduce_reports_metrics_equal_to_the_registered_ones(registered, tmp_path, capsys):
    project, config = registered
    # The original data is gone: the snapshot is what reproduces it.
    for path in (tmp_path / "data").iterdir():
        path.unlink()
    assert main(["--config", str(config), "reproduce", "1"]) == 0
    out = capsys.readouterr().out
    assert "v1 reproduced" in out
    result = reproduce(project, 1, progress=False)
    metrics = project.client.get_run(project.client.get_model_version("diabetes", "1").run_id)
    assert {r["metric"] for r in result.rows} == {"r2", "rmse", "mae"}
    for row in result.rows:
        assert row["reproduced"] == pytest.approx(metrics.data.metrics[row["metric"]], abs=1e-12)
    # tmp_path is no git work tree and neither was it at training: no commit warning.
    assert result.passed and result.warnings == []


def test_reproduce_fails_on_a_mismatch_beyond_tolerance(registered, capsys):
    project, config = registered
    run_id = project.client.get_model_version("diabetes", "1").run_id
    project.client.log_metric(run_id, "r2", 0.1)  # the registry now says otherwise
    assert main(["--config", str(config), "reproduce", "1"]) == 1
    captured = capsys.readouterr()
    assert "NO" in captured.out and "r2 differ beyond tolerance" in captured.err


def test_reproduce_warns_when_the_working_tree_is_at_another_commit(registered, tmp_path):
    project, _ = registered
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "later"], check=True)
    result = reproduce(project, 1, progress=False)
    assert result.passed
    assert "trained at commit unversioned" in result.warnings[0]


def test_snapshots_lists_versions_with_digest_files_and_size(registered, capsys):
    project, config = registered
    assert main(["--config", str(config), "snapshots"]) == 0
    header, row = capsys.readouterr().out.splitlines()
    assert header.split() == ["version", "digest", "files", "size", "created", "source"]
    assert row.split()[0] == "1" and row.split()[2] == "2" and "KiB" in row


def test_a_corrupt_snapshot_is_detected_by_its_digest(registered, tmp_path):
    project, _ = registered
    _, snapshot = snapshots.for_version(project, 1)
    digest = snapshot.inputs[0]["sha256"]
    blob = tmp_path / "state" / "pipeline" / "objects" / digest[:2] / digest
    blob.write_bytes(blob.read_bytes().replace(b"0", b"1", 1))
    with pytest.raises(SnapshotCorrupt, match=digest[:12]):
        snapshots.restore(project, 1, tmp_path / "out")
    # The manifest itself is checked too.
    manifest = project.client.get_model_version("diabetes", "1").tags[snapshots.TAG]
    path = tmp_path / "state" / "pipeline" / "objects" / manifest[:2] / manifest
    path.write_text(path.read_text().replace('"1"', '"2"'))
    with pytest.raises(SnapshotCorrupt):
        snapshots.load(ContentStore.for_project(project), manifest)


def test_a_version_without_a_snapshot_says_so(tmp_path):
    from mlops_kit.train.data import load_dataset

    project = Project.load(write_project(tmp_path), state_dir=tmp_path / "state")
    train_and_register(project, load_dataset("wine"), training_params(n_estimators=5))
    with pytest.raises(SnapshotNotFound, match="v1 has no snapshot"):
        snapshots.restore(project, 1, tmp_path / "out")


def test_a_file_name_leaving_the_directory_is_refused(tmp_path):
    escaping = {"name": "../outside.csv", "sha256": "0" * 64, "size": 0}
    snapshot = snapshots.Snapshot("m", "1", "run", "now", "c", "s", {}, {}, [escaping])
    store = ContentStore(str(tmp_path / "s"))
    with pytest.raises(ConfigError, match="leaves"):
        snapshots.write_inputs(store, snapshot, tmp_path / "to", force=True)
    assert not (tmp_path / "outside.csv").exists()


def test_the_bundled_demo_data_is_snapshotted_and_reproduced(tmp_path):
    from mlops_kit.pipeline import train

    project = Project.load(write_project(tmp_path), state_dir=tmp_path / "state")
    train.run(project, training_params(n_estimators=5), progress=False)
    restored = snapshots.restore(project, 1, tmp_path / "out")
    assert [p.name for p in restored] == ["wine.csv"]
    assert reproduce(project, 1, progress=False).passed

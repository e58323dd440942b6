import mlflow
import pytest

from mlops_kit.errors import ParameterError
from mlops_kit.settings import DATASETS, TrainingSettings
from mlops_kit.train import training


@pytest.mark.parametrize("name", DATASETS)
def test_every_bundled_dataset_loads_and_splits(name):
    data = training.load_dataset(name, test_size=0.3, random_state=1)
    assert len(data.X_test) > 0 and len(data.X_train) > len(data.X_test)
    assert (data.X_train.dtypes == "float64").all()
    assert len(data.fingerprint) == 64


def test_same_data_same_fingerprint_different_data_different_fingerprint():
    assert training.load_dataset("wine").fingerprint == training.load_dataset("wine").fingerprint
    assert training.load_dataset("wine").fingerprint != training.load_dataset("iris").fingerprint


def test_unknown_dataset_is_a_parameter_error():
    with pytest.raises(ParameterError, match="'dataset'.*wine"):
        training.load_dataset("nope")


def test_training_params_merge_and_validate():
    params = training.training_params(
        TrainingSettings(n_estimators=7), dataset="iris", max_depth=None
    )
    assert (params.dataset, params.n_estimators) == ("iris", 7)
    with pytest.raises(ParameterError, match="'n_estimators'"):
        training.training_params(n_estimators=0)
    with pytest.raises(ParameterError, match="'learning_rate'.*unknown"):
        training.training_params(learning_rate=0.1)


@pytest.mark.parametrize(
    "model_type", ["random_forest", "gradient_boosting", "logistic_regression"]
)
def test_each_model_type_learns(model_type, wine):
    params = training.training_params(model_type=model_type, n_estimators=10)
    model = training.build_estimator(params).fit(wine.X_train, wine.y_train)
    assert training.score(model, wine.X_test, wine.y_test)["accuracy"] > 0.8


def test_train_and_register_tracks_and_tags_lineage(registered):
    project, result = registered
    assert result.version == "1"
    run = project.client.get_run(result.run_id)
    assert run.data.params["n_estimators"] == "20"
    assert run.data.metrics["accuracy"] == pytest.approx(result.metrics["accuracy"])
    mv = project.client.get_model_version(project.model_name, "1")
    assert mv.tags["mlops.git_commit"] == "unversioned"  # tmp_path is not a git work tree
    assert mv.tags["mlops.data_fingerprint"] == result.lineage["mlops.data_fingerprint"]
    assert mv.tags["mlops.pipeline_run_id"]
    assert mv.tags["mlops.toolkit_version"]
    info = mlflow.models.get_model_info(f"models:/{project.model_name}/1")
    assert info.signature is not None
    assert info.saved_input_example_info is not None
    # Everything the embedded default writes is inside the state directory.
    assert str(project.state_dir) in project.client.get_model_version_download_uri(
        project.model_name, "1"
    )


def test_git_commit_is_recorded_inside_a_work_tree(tmp_path):
    import subprocess

    subprocess.run(["git", "init", "-q"], check=True)
    (tmp_path / "f").write_text("x")
    subprocess.run(["git", "add", "f"], check=True)
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"], check=True
    )
    commit = training.git_commit(tmp_path)
    assert len(commit) == 40
    (tmp_path / "f").write_text("y")
    assert training.git_commit(tmp_path).endswith("-dirty")

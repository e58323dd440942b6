"""The training pipeline of a project, for real: MLflow registry, CSV data, a user entrypoint."""

import hashlib
import textwrap

import pytest

from mlops_kit.errors import StepFailed
from mlops_kit.pipeline import train as pipeline
from mlops_kit.project import Project
from mlops_kit.train.training import training_params
from tests.support import seeded_registry, write_project

RIDGE = """
from sklearn.linear_model import Ridge


def fit(data, params):
    return Ridge(alpha=params.get("alpha", 1.0)).fit(data.X_train, data.y_train)
"""

FLAKY = """
from pathlib import Path


def double_check(context, table):
    # Fails on the first two attempts of every run, as a flaky store would.
    marker = Path(context.params["marker"])
    calls = int(marker.read_text()) + 1 if marker.exists() else 1
    marker.write_text(str(calls))
    if calls <= 2:
        raise ConnectionError(f"store unreachable (call {calls})")
    return {"table": table}
"""


def regression_project(tmp_path, **pipeline_settings):
    """scikit-learn's diabetes data as a CSV with a target column, a Ridge entrypoint."""
    from sklearn.datasets import load_diabetes

    (tmp_path / "data").mkdir(exist_ok=True)
    frame = load_diabetes(as_frame=True).frame
    frame.to_csv(tmp_path / "data" / "diabetes.csv", index=False)
    (tmp_path / "ridge_train.py").write_text(RIDGE)
    (tmp_path / "flaky_steps.py").write_text(FLAKY)
    config = write_project(
        tmp_path,
        model_name="diabetes",
        training={"data": {"path": "data/diabetes.csv"}, "entrypoint": "ridge_train:fit"},
        gates={"metric": "r2", "min_value": 0.3},
        pipeline=pipeline_settings,
    )
    seeded_registry(tmp_path / "state")  # the registry's schema is not what these are about
    return Project.load(config, state_dir=tmp_path / "state")


def run(project, **overrides):
    params = training_params(project.settings.training, **overrides)
    return pipeline.run(project, params, progress=False)


def statuses(result):
    return {s.step: s.status for s in result.record.steps}


@pytest.fixture
def project(tmp_path):
    return regression_project(tmp_path)


def test_a_rerun_of_an_unchanged_pipeline_reports_every_step_cached(project, capsys):
    first = run(project)
    assert set(statuses(first).values()) == {"ran"}
    registered = first.output("registration")
    assert registered.version == "1" and {"r2", "rmse", "mae"} <= set(registered.metrics)
    params = training_params(project.settings.training)
    second = pipeline.run(project, params)
    assert second.record.cached == [
        "ingest", "validate", "preprocess", "train", "evaluate", "register"
    ]  # fmt: skip
    assert second.output("registration").version == "1"
    shown = [line.split()[:2] for line in capsys.readouterr().err.splitlines()]
    steps = ["ingest", "validate", "preprocess", "train", "evaluate", "register"]
    assert [line for line in shown if line[0] in steps] == [[s, "cached"] for s in steps]
    assert len(project.client.search_model_versions("name = 'diabetes'")) == 1


def test_a_changed_parameter_reruns_only_the_steps_downstream(project):
    run(project)
    changed = run(project, params={"alpha": 0.5})
    assert statuses(changed) == {
        "ingest": "cached", "validate": "cached", "preprocess": "cached",
        "train": "ran", "evaluate": "ran", "register": "ran",
    }  # fmt: skip
    assert changed.output("registration").version == "2"


def test_a_changed_data_file_reruns_from_ingest(project, tmp_path):
    run(project)
    csv = tmp_path / "data" / "diabetes.csv"
    csv.write_text(csv.read_text() + csv.read_text().splitlines()[1] + "\n")
    assert statuses(run(project))["ingest"] == "ran"


def test_a_step_failing_twice_is_retried_and_the_run_succeeds(tmp_path):
    marker = tmp_path / "calls"
    project = regression_project(
        tmp_path,
        backoff=0.01,
        steps={
            "double_check": {
                "entrypoint": "flaky_steps:double_check", "after": "validate",
                "inputs": ["table"], "outputs": ["table"], "retryable": True, "retries": 3,
                "params": {"marker": str(marker)},
            }
        },
    )  # fmt: skip
    result = run(project)
    assert result.record.status == "succeeded"
    step = result.record.step("double_check")
    assert (step.status, step.attempts) == ("ran", 3)
    assert [s.step for s in result.record.steps][2] == "double_check"
    assert result.output("registration").version == "1"


def test_a_failing_step_names_itself_and_loses_nothing(tmp_path):
    project = regression_project(tmp_path, expectations={"columns": {"sex": "string"}})
    with pytest.raises(StepFailed, match="step 'validate' failed: .*column 'sex'") as err:
        run(project)
    assert err.value.step == "validate"
    fixed = regression_project(tmp_path, expectations={"columns": {"sex": "number"}})
    again = run(fixed)
    assert statuses(again)["ingest"] == "cached" and statuses(again)["validate"] == "ran"


def test_the_run_logs_its_data_as_an_mlflow_dataset_input(project, tmp_path):
    result = run(project).output("registration")
    (logged,) = project.client.get_run(result.run_id).inputs.dataset_inputs
    csv = (tmp_path / "data" / "diabetes.csv").read_bytes()
    listing = f"diabetes.csv {hashlib.sha256(csv).hexdigest()}".encode()
    assert logged.dataset.digest == hashlib.sha256(listing).hexdigest()[:32]
    assert "diabetes.csv" in logged.dataset.source
    tags = project.client.get_model_version("diabetes", result.version).tags
    assert len(tags["mlops.snapshot"]) == 64


def test_the_bundled_demo_data_runs_through_the_same_steps(tmp_path):
    project = Project.load(write_project(tmp_path), state_dir=tmp_path / "state")
    result = run(project, n_estimators=5)
    data = result.output("dataset")
    assert data.name == "wine" and data.target_names[0] == "class_0"
    assert result.output("registration").metrics["accuracy"] > 0.8
    assert textwrap.dedent(result.record._repr_html_()).count("<tr>") == 7


STRICT = """
from mlops_kit.errors import DataValidationFailed


def no_old_patients(context, table):
    if (table["age"] > context.params["max_age"]).any():
        raise DataValidationFailed("age", "patients above the age limit")
    return {"report": {"rows": len(table)}}
"""


def test_a_built_in_step_is_replaced_by_entrypoint(tmp_path):
    (tmp_path / "strict.py").write_text(STRICT)
    steps = {"validate": {"entrypoint": "strict:no_old_patients", "params": {"max_age": 0.5}}}
    project = regression_project(tmp_path, steps=steps)
    result = run_until(project, "validate")
    assert result.output("report") == {"rows": 442}
    steps["validate"]["params"] = {"max_age": 0.1}
    stricter = regression_project(tmp_path, steps=steps)
    with pytest.raises(StepFailed, match="step 'validate' failed: .*column 'age'"):
        run_until(stricter, "validate")


def run_until(project, step):
    params = training_params(project.settings.training)
    return pipeline.run(project, params, progress=False, until=step)


def test_steps_that_cannot_be_placed_are_refused_before_anything_runs(tmp_path):
    from mlops_kit.errors import ConfigError

    added = {"entrypoint": "flaky_steps:double_check", "inputs": ["table"], "outputs": ["x"]}
    project = regression_project(tmp_path, steps={"extra": {**added, "after": "nowhere"}})
    with pytest.raises(ConfigError, match="pipeline.steps.extra.after: no step named 'nowhere'"):
        run(project)
    project = regression_project(tmp_path, steps={"extra": {**added, "inputs": ["model"],
                                                            "after": "ingest"}})  # fmt: skip
    with pytest.raises(ConfigError, match="'extra' takes model, which no step before it gives"):
        run(project)
    with pytest.raises(ConfigError, match="pipeline.steps: .*extra: not a built-in step"):
        regression_project(tmp_path, steps={"extra": {"outputs": ["x"]}})
    assert not (tmp_path / "state" / "pipeline" / "runs").exists()

"""Acceptance: a team's own CSV regression data and training function through `mlops-kit run
01 02` — registered with r2/rmse, gated on rmse (lower is better), deployed to staging, and
staging answers what the registered model predicts."""

import os
import subprocess
import sys
import textwrap

import pytest

from tests.support import seeded_registry, write_project

TRAIN = """
    from sklearn.linear_model import Ridge


    def train(data, params):
        assert data.task == "regression", data.task
        model = Ridge(alpha=params["alpha"], random_state=params["random_state"])
        return model.fit(data.X_train, data.y_train), {"alpha": params["alpha"]}
"""


@pytest.mark.slow
def test_own_csv_and_ridge_entrypoint_run_through_01_02(tmp_path):
    import mlflow.pyfunc
    from sklearn.datasets import load_diabetes

    from mlops_kit.project import Project
    from mlops_kit.registry.client import Registry
    from mlops_kit.targets import for_environment
    from mlops_kit.targets.local import stop_all
    from mlops_kit.verify.v2 import infer

    root = tmp_path / "team-model"
    (root / "data").mkdir(parents=True)
    bunch = load_diabetes(as_frame=True)
    bunch.data.assign(target=bunch.target).to_csv(root / "data" / "diabetes.csv", index=False)
    (root / "my_model.py").write_text(textwrap.dedent(TRAIN))
    write_project(
        root,
        project="team",
        model_name="diabetes-progression",
        state_dir=".mlops",
        training={
            "data": {"path": "data/diabetes.csv", "target": "target"},
            "entrypoint": "my_model:train",
            "params": {"alpha": 0.1},
        },
        gates={"metric": "rmse", "threshold": 70.0, "max_regression": 2.0},
    )
    seeded_registry(root / ".mlops")  # the registry's schema is not what this is about
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLOPS_KIT_")}
    env["MLOPS_KIT_ACTOR"] = "alice"
    try:
        run = subprocess.run(
            [sys.executable, "-m", "mlops_kit.cli", "run", "01", "02", "--quiet"],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert run.returncode == 0, run.stderr[-3000:]
        assert "02_create_pipeline.ipynb: ok" in run.stdout

        project = Project.load(root / "mlops.yaml")
        registry = Registry(project)
        version = registry.get(1)
        assert set(version.aliases) >= {"staging"}
        tags = version.tags
        assert (tags["mlops.task"], tags["mlops.entrypoint"]) == ("regression", "my_model:train")
        assert (tags["mlops.gate.verdict"], tags["mlops.gate.metric"]) == ("passed", "rmse")
        assert tags["mlops.smoke.staging"] == "passed"
        assert tags["mlops.data_source"] == str(root / "data" / "diabetes.csv")
        metrics = project.client.get_run(version.run_id).data.metrics
        assert {"r2", "rmse", "mae", "alpha"} <= set(metrics)
        assert 0.3 < metrics["r2"] < 1 and metrics["rmse"] < 70

        staging = for_environment(project.settings, "staging").status(project.model_name)
        assert staging.version == "1" and staging.endpoint
        rows = bunch.data.sample(25, random_state=3)
        served = infer(staging.endpoint, project.model_name, rows)
        registered = mlflow.pyfunc.load_model(str(registry.local_path(1))).predict(rows)
        assert served.dtype.kind == "f"
        assert served.tolist() == pytest.approx(list(registered), rel=1e-9)

        # The load test sends the version's own input example, float answers and all.
        from mlops_kit.verify.loadtest import load_test

        loaded = load_test(project, "staging", users=2, duration_s=1.0, progress=False)
        assert loaded.version == "1" and loaded.result.requests > 0
        assert loaded.result.failures == 0
    finally:
        stop_all(root / ".mlops")


@pytest.mark.slow
def test_a_failing_entrypoint_stops_run_02_with_one_line_naming_it(tmp_path):
    from mlops_kit.project import Project
    from mlops_kit.targets.local import stop_all

    root = tmp_path / "team-model"
    root.mkdir()
    (root / "my_model.py").write_text("def train(data, params):\n    return 'a model'\n")
    write_project(
        root,
        model_name="wine-model",
        state_dir=".mlops",
        training={"entrypoint": "my_model:train"},
    )
    seeded_registry(root / ".mlops")  # the registry's schema is not what this is about
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLOPS_KIT_")}
    try:
        run = subprocess.run(
            [sys.executable, "-m", "mlops_kit.cli", "run", "02", "--quiet"],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
    finally:
        stop_all(root / ".mlops")
    assert run.returncode == 1, run.stderr[-2000:]
    line = run.stderr.strip().splitlines()[-1]
    # The train step names itself, and the entrypoint what it did wrong.
    assert "StepFailed: pipeline step 'train' failed: training entrypoint 'my_model:train'" in line
    assert "returned a str" in line
    project = Project.load(root / "mlops.yaml")
    assert project.client.search_model_versions("name='wine-model'") == []

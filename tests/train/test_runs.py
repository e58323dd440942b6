"""A run whose process was killed mid-training is marked FAILED by the next training."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from mlops_kit.project import Project
from mlops_kit.train.training import load_dataset, train_and_register, training_params
from tests.support import REPO

CHILD = """
import sys, time, mlflow
from mlops_kit.project import Project
from tests.support import REPO
from mlops_kit.train.runs import owner_tags
project = Project.load(state_dir=sys.argv[1])
project.experiment_id()
with mlflow.start_run(run_name="train-killed") as run:
    mlflow.set_tags(owner_tags())
    print(run.info.run_id, flush=True)
    time.sleep(600)
"""


def test_a_killed_training_run_does_not_stay_running(tmp_path):
    state = tmp_path / "state"
    project = Project.load(state_dir=state)
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(state)],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)},
        start_new_session=True,
    )  # fmt: skip
    try:
        run_id = child.stdout.readline().strip()
        assert run_id, "the child did not start its run"
        assert project.client.get_run(run_id).info.status == "RUNNING"
        # A second live training is left alone while its process lives.
        train_and_register(project, load_dataset("wine"), training_params(n_estimators=3))
        assert project.client.get_run(run_id).info.status == "RUNNING"
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait(10)
    time.sleep(0.1)
    train_and_register(project, load_dataset("wine"), training_params(n_estimators=3))
    run = project.client.get_run(run_id)
    assert run.info.status == "FAILED"
    assert run.data.tags["mlops.failure"] == "its process died before it ended"

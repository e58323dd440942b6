"""Acceptance, through the command line as a team runs it: `mlops-kit run 01 02` twice (the
second run every step cached), then `restore 1 --to D` (sha256 equal to the original inputs)
and `reproduce 1` (metrics equal to version 1's)."""

import hashlib
import json
import os
import re
import subprocess
import sys

import pytest

from tests.support import write_project

TRAIN = """from sklearn.linear_model import Ridge


def train(data, params):
    return Ridge(alpha=params["alpha"]).fit(data.X_train, data.y_train)
"""


def sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow
def test_run_twice_cached_then_restore_and_reproduce_version_1(tmp_path):
    from sklearn.datasets import load_diabetes

    from mlops_kit.targets.local import stop_all

    root = tmp_path / "team-model"
    (root / "data").mkdir(parents=True)
    frame = load_diabetes(as_frame=True).frame
    frame.iloc[:300].to_csv(root / "data" / "2024.csv", index=False)
    frame.iloc[300:].to_csv(root / "data" / "2025.csv", index=False)
    (root / "my_model.py").write_text(TRAIN)
    write_project(
        root,
        model_name="diabetes",
        state_dir=".mlops",
        training={"data": {"path": "data"}, "entrypoint": "my_model:train",
                  "params": {"alpha": 0.1}},
        gates={"metric": "rmse", "threshold": 70.0},
    )  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLOPS_KIT_")}
    env["MLOPS_KIT_ACTOR"] = "alice"

    def mlops_kit(*args):
        return subprocess.run(
            [sys.executable, "-m", "mlops_kit.cli", *args],
            cwd=root, env=env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip

    try:
        first = mlops_kit("run", "01", "02", "--quiet")
        assert first.returncode == 0, first.stderr[-3000:]
        second = mlops_kit("run", "02", "--quiet", "-o", "build/second")
        assert second.returncode == 0, second.stderr[-3000:]
    finally:
        stop_all(root / ".mlops")
    executed = json.loads((root / "build" / "second" / "02_create_pipeline.ipynb").read_text())
    outputs = [out for cell in executed["cells"] for out in cell.get("outputs", [])]
    shown = "".join("".join(out.get("data", {}).get("text/html", "")) for out in outputs)
    printed = "".join("".join(out.get("text", "")) for out in outputs if out.get("name"))
    steps = ["ingest", "validate", "preprocess", "train", "evaluate", "register"]
    rows = re.findall(r"<tr>(.*?)</tr>", shown, flags=re.S)
    cached = [s for s in steps if any(f">{s}<" in r and "cached" in r for r in rows)]
    assert cached == steps  # the step table: every step a cache hit
    assert "pipeline: 6/6 steps" in printed  # its progress: one bar that filled

    restored = mlops_kit("restore", "1", "--to", str(tmp_path / "D"))
    assert restored.returncode == 0, restored.stderr
    for name in ("2024.csv", "2025.csv"):
        assert sha(tmp_path / "D" / name) == sha(root / "data" / name)

    reproduced = mlops_kit("reproduce", "1")
    assert reproduced.returncode == 0, reproduced.stderr
    rows = reproduced.stdout.splitlines()
    assert rows[0].split() == ["metric", "registered", "reproduced", "difference", "equal"]
    assert {r.split()[0]: r.split()[-1] for r in rows[1:4]} == {
        "mae": "yes", "r2": "yes", "rmse": "yes"
    }  # fmt: skip
    assert "v1 reproduced" in rows[-1]

    listed = mlops_kit("snapshots")
    assert listed.stdout.splitlines()[1].split()[:3][::2] == ["1", "2"]

"""Notebook 03 with a canary production: the approval rolls out phase by phase and the HTML
report shows the rollout's panel and timeline plot."""

from __future__ import annotations

import json

import pytest

from mlops_kit.notebook import runner
from tests.support import NOTEBOOKS, seeded_registry, write_project
from tests.support.signers import demo_signers

pytestmark = pytest.mark.slow


@pytest.fixture
def servers(tmp_path):
    from mlops_kit.targets.local import stop_all

    seeded_registry(tmp_path / "state")  # the registry's schema is not what this is about
    yield tmp_path / "state"
    stop_all(tmp_path / "state")


def test_notebook_03_reports_the_canary_timeline(tmp_path, monkeypatch, servers):
    from mlops_kit.project import Project
    from mlops_kit.promote.promotion import Promotions

    canary = {"strategy": "canary", "steps": [50, 100], "bake_seconds": 1,
              "analysis": {"min_requests": 0}}  # fmt: skip
    environments = [
        {"name": "staging", "kind": "staging"},
        {"name": "production", "kind": "production", "rollout": canary},
    ]
    monkeypatch.setenv("MLOPS_KIT_CONFIG", str(write_project(tmp_path, environments=environments)))
    monkeypatch.setenv("MLOPS_KIT_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("MLOPS_KIT_ACTOR", "alice")
    keys = demo_signers(Project.load(state_dir=tmp_path / "state"))
    names = [str(p) for p in sorted(NOTEBOOKS.glob("0[123]_*.ipynb"))]
    params = {
        "n_estimators": 5,
        "approve": True,
        "approver": "bob",
        "signing_key": str(keys["bob"]),
    }
    runner.run_notebooks(names, params, output_dir=tmp_path / "one", progress_bar=False)
    params["n_estimators"] = 7
    runs = runner.run_notebooks(names[1:], params, output_dir=tmp_path / "two", progress_bar=False)
    requests = Promotions(Project.load(state_dir=tmp_path / "state")).all()
    assert [r.status for r in requests] == ["rolled_out", "rolled_out"]
    second = requests[-1]
    assert [e["phase"] for e in second.rollout["timeline"]] == ["canary 50%"]
    executed = json.loads(runs[-1].output.read_text())
    plot = next(c for c in executed["cells"] if "plots.rollout_timeline" in "".join(c["source"]))
    assert any("image/png" in out.get("data", {}) for out in plot["outputs"])
    html = runs[-1].html.read_text()
    assert "canary rollout: rolled_out" in html and "canary 50%" in html

"""The committed notebooks: hygiene, a full papermill run, and a testbook run with a patch."""

import ast
import json
import os
import shutil

import nbformat
import pytest

from mlops_kit.notebook import runner
from tests.support import NOTEBOOKS, seeded_registry, write_project
from tests.support.signers import demo_signers

ALL = sorted(NOTEBOOKS.glob("*.ipynb"))


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_committed_notebook_is_clean(path):
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    tagged = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, "exactly one parameters cell"
    for cell in code:
        assert cell["outputs"] == [] and cell["execution_count"] is None
    # The parameters cell holds plain literals only.
    for node in ast.parse("".join(tagged[0]["source"])).body:
        assert isinstance(node, ast.Assign)
        ast.literal_eval(node.value)
    # Logic lives in the library: no definitions, loops or branches in notebook cells.
    for cell in code:
        for node in ast.walk(ast.parse("".join(cell["source"]))):
            assert not isinstance(
                node, ast.FunctionDef | ast.ClassDef | ast.For | ast.While | ast.If | ast.Lambda
            ), f"{path.name}: {type(node).__name__} in a code cell"
    assert sum(c["cell_type"] == "markdown" for c in nb["cells"]) >= len(code) // 2


@pytest.fixture
def servers(tmp_path):
    """The notebooks start servers under this state directory; stop them afterwards.

    Its registry starts with MLflow's schema made (not what these are about: a kernel making
    it is what tests/test_scaffold.py and tests/pipeline/test_acceptance.py run).
    """
    from mlops_kit.targets.local import stop_all

    state = tmp_path / "state"
    seeded_registry(state)
    yield state
    stop_all(state)


def test_pipeline_notebooks_run_twice_with_papermill(tmp_path, monkeypatch, servers):
    """01, 02, 03 with no decision (03 does not wait), 03 approved by the requester (refused),
    03 approved by bob; then 02 and 03 again: one pipeline run for all of it."""
    from mlops_kit.project import Project
    from mlops_kit.promote.promotion import Promotions
    from mlops_kit.registry.client import Registry
    from mlops_kit.targets import for_environment

    monkeypatch.setenv("MLOPS_KIT_CONFIG", str(write_project(tmp_path)))
    monkeypatch.setenv("MLOPS_KIT_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("MLOPS_KIT_ACTOR", "alice")
    names = [str(p) for p in ALL if p.name[:2] in {"01", "02", "03"}]
    keys = demo_signers(Project.load(state_dir=tmp_path / "state"))
    build = tmp_path / "build"
    # Notebook 03 does not wait without a decision: the request stays pending.
    runs = runner.run_notebooks(names, {"n_estimators": 20}, output_dir=build, progress_bar=False)
    assert [r.output.name for r in runs] == [p.rsplit("/", 1)[-1] for p in names]
    assert all(r.html.is_file() for r in runs)
    assert [r.status for r in Promotions(Project.load(state_dir=tmp_path / "state")).all()] == [
        "pending"
    ]
    # Approving your own request is refused: the notebook fails naming the rule.
    with pytest.raises(runner.NotebookFailed, match="four-eyes"):
        runner.run_notebooks(
            names[2:],
            {"approve": True, "approver": "alice"},
            output_dir=tmp_path / "refused",
            progress_bar=False,
        )
    params = {"approve": True, "approver": "bob", "signing_key": str(keys["bob"])}
    (review,) = runner.run_notebooks(names[2:], params, output_dir=build, progress_bar=False)
    # The pipeline's record is in the report: a table of steps with their cache hits.
    report = runs[1].html.read_text()
    assert "Pipeline run" in report and "cache hit" in report
    # Its progress is one bar that filled, not a block of log lines.
    assert "pipeline: 6/6 steps" in report and "output_stderr" not in report
    # Another tree count: the data steps are cached, training runs and registers v2.
    again = {**params, "n_estimators": 40}
    reruns = runner.run_notebooks(names[1:], again, output_dir=tmp_path / "build2",
                                  progress_bar=False)  # fmt: skip
    assert "✔ ran" in reruns[0].html.read_text() and "• cached" in reruns[0].html.read_text()
    project = Project.load(state_dir=tmp_path / "state")
    registry = Registry(project)
    second = registry.get(2)
    assert set(second.aliases) == {"staging", "production"}
    assert second.tags["mlops.gate.champion"] == "1"
    assert second.tags["mlops.smoke.staging"] == "passed"
    assert second.tags["mlops.smoke.production"] == "passed"
    statuses = [r.status for r in Promotions(project).all()]
    assert statuses == ["rolled_out", "rolled_out"]
    assert for_environment(project.settings, "production").status(project.model_name).version == "2"
    # The review's report reads offline: request, metric table and gate verdict as plain HTML.
    first = Promotions(project).all()[0]
    html = review.html.read_text()
    assert "<script" not in html
    assert first.id in html and 'class="mlops-table mlops-metrics"' in html
    assert "gate PASSED: v1" in html and "✔ rolled_out" in html
    assert html.index("Report · ") < html.index("03 · Review")
    # It cites the reports where this run wrote them (not the settings' build/notebooks).
    assert first.evidence["reports"] == [
        "build/01_setup_cluster.html",
        "build/02_create_pipeline.html",
    ]


def test_testbook_run_with_a_patched_parameter(tmp_path, monkeypatch, servers):
    from testbook import testbook

    monkeypatch.setenv("MLOPS_KIT_CONFIG", str(write_project(tmp_path)))
    monkeypatch.setenv("MLOPS_KIT_STATE_DIR", str(tmp_path / "state"))
    path = NOTEBOOKS / "02_create_pipeline.ipynb"
    nb = nbformat.read(path, as_version=4)
    params_index = next(
        i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])
    )
    with testbook(path, execute=False, timeout=300) as tb:
        tb.execute_cell(list(range(params_index + 1)))
        tb.inject("dataset = 'iris'\nn_estimators = 15", after=params_index, run=True)
        tb.execute_cell(list(range(params_index + 2, len(tb.cells))))
        assert tb.value("data.name") == "iris"
        assert tb.value("settings.n_estimators") == 15
        assert tb.value("verdict.passed") is True
        assert tb.value("result.version") == "1"


@pytest.mark.slow
def test_notebook_03_run_as_jupyterlab_runs_it_finds_the_project(tmp_path, monkeypatch):
    """After the demo, `mlops-kit run 02` as alice; then notebook 03 with its kernel in
    notebooks/ and no MLOPS_KIT_* variable (papermill's cwd, as JupyterLab runs kernels),
    approved by bob: production serves the new version."""
    import papermill

    from mlops_kit.project import Project
    from mlops_kit.promote.promotion import Promotions
    from mlops_kit.registry.client import Registry
    from mlops_kit.targets import for_environment
    from mlops_kit.targets.local import stop_all
    from tests.support import DEMO_CONFIG

    root = tmp_path / "demo"
    (root / "notebooks").mkdir(parents=True)
    for path in ALL:
        shutil.copy(path, root / "notebooks" / path.name)
    shutil.copy(DEMO_CONFIG, root / "mlops.yaml")  # state_dir: .mlops, relative to it
    seeded_registry(root / ".mlops")  # a kernel making it: tests/test_scaffold.py, acceptance
    monkeypatch.chdir(root)
    params = {"n_estimators": 20}
    try:
        monkeypatch.setenv("MLOPS_KIT_ACTOR", "alice")
        runner.run_notebooks(["01", "02"], params, progress_bar=False)
        project = Project.load()
        keys = demo_signers(project, ("alice", "bob"))  # as make demo does
        (first,) = Promotions(project).pending()
        Promotions(project).approve(first.id, "bob", signing_key=keys["bob"])
        runner.run_notebooks(["02"], {"n_estimators": 40}, progress_bar=False)
        monkeypatch.delenv("MLOPS_KIT_ACTOR")
        assert not [k for k in os.environ if k.startswith("MLOPS_KIT_")]

        papermill.execute_notebook(
            str(root / "notebooks" / "03_promote_model.ipynb"),
            str(tmp_path / "03_promote_model.ipynb"),
            parameters={
                "approve": True,
                "approver": "bob",
                "comment": "from notebooks/",
                "signing_key": str(keys["bob"]),
            },
            cwd=str(root / "notebooks"),
            progress_bar=False,
        )
        assert not (root / "notebooks" / ".mlops").exists(), "no state beside the kernel"
        production = for_environment(project.settings, "production").status(project.model_name)
        assert production.version == "2"
        assert Registry(project).by_alias("production").version == "2"
        requests = Promotions(project).all()
        assert [(r.candidate, r.status, r.approvers) for r in requests] == [
            ("1", "rolled_out", ["bob"]),
            ("2", "rolled_out", ["bob"]),
        ]
    finally:
        stop_all(root / ".mlops")

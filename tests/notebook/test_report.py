"""Reports: a headline on top of each executed notebook, and HTML that needs no network."""

from __future__ import annotations

import re

import nbformat
import pytest

from mlops_kit.display import FIGURE_MIME
from mlops_kit.notebook import report, runner

WIDGET = "application/vnd.jupyter.widget-view+json"


def executed(*outputs, error=None):
    """A notebook as papermill leaves it: one code cell per output, metadata of the run."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["papermill"] = {
        "duration": 12.34,
        "start_time": "2026-11-23T12:00:00.123456",
        "parameters": {"approver": "bob"},
    }
    nb.cells.append(nbformat.v4.new_markdown_cell("# 03 · Review"))
    for count, data in enumerate(outputs, start=1):
        cell = nbformat.v4.new_code_cell("x", execution_count=count)
        cell.outputs = [nbformat.v4.new_output("execute_result", data, execution_count=count)]
        nb.cells.append(cell)
    if error is not None:
        cell = nbformat.v4.new_code_cell("boom()", execution_count=len(outputs) + 1)
        cell.outputs = [nbformat.v4.new_output("error", ename=error[0], evalue=error[1])]
        nb.cells.append(cell)
    return nb


def figure(label, text, passed=None):
    return {FIGURE_MIME: {"label": label, "text": text, "passed": passed}, "text/plain": "x"}


def test_the_headline_names_the_run_and_its_figures():
    nb = executed(
        figure("promotion", "r1 pending"),
        figure("quality gate", "gate PASSED", True),
        figure("promotion", "r1 rolled_out", True),
    )
    text = report.headline(nb, "03_promote_model")
    assert text.startswith("### Report · **03_promote_model ✔ passed** · in 12.3 s")
    assert "started 2026-11-23 12:00:00 UTC" in text and "`approver='bob'`" in text
    rows = [line for line in text.splitlines() if line.startswith("| ✔")]
    # One line per step, the later display of a step replacing the earlier one.
    assert rows == ["| ✔ | promotion | r1 rolled_out |", "| ✔ | quality gate | gate PASSED |"]


def test_a_failed_run_names_the_cell_as_jupyterlab_numbers_it():
    nb = executed(figure("gate", "gate FAILED | below", False), error=("GateFailed", "too low\n.."))
    text = report.headline(nb, "02_create_pipeline")
    assert "**02_create_pipeline ✘ failed**" in text
    assert "**Stopped at cell In [2]: GateFailed: too low**" in text
    assert "gate FAILED \\| below" in text  # a pipe does not break the table


def test_the_export_reads_offline_and_shows_widgets_as_static_html(tmp_path):
    nb = executed(
        {"text/html": "<p>request r1</p>", "text/plain": "PromotionRequest(...)"},
        {WIDGET: {"model_id": "m1", "version_major": 2, "version_minor": 0},
         "text/html": "<p class='stand-in'>decide with mlops-kit approve</p>",
         "text/plain": "VBox(...)"},
    )  # fmt: skip
    state = {"state": {"m1": {"model_name": "VBoxModel", "state": {}}}}
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": state}
    path = tmp_path / "03_promote_model.ipynb"
    nbformat.write(nb, path)
    html = report.export_html(path).read_text()
    assert "<script" not in html
    assert not re.search(r"""(src|href)=["']https?://""", html)
    assert "request r1" in html and "decide with mlops-kit approve" in html
    assert "VBox(" not in html and "Report · <strong>03_promote_model" in html
    # The executed notebook carries the headline too, once however often it is rendered.
    report.export_html(path)
    cells = nbformat.read(path, as_version=4).cells
    assert report.HEADLINE_TAG in cells[0].metadata.tags
    assert sum(report.HEADLINE_TAG in c.metadata.get("tags", []) for c in cells) == 1


REQUEST_NOTEBOOK = """\
from mlops_kit.promote.approvals import PromotionRequest
from mlops_kit.train.gates import GateVerdict

evidence = {
    "metrics": {"candidate": {"accuracy": 0.97, "f1_macro": 0.96},
                "current": {"accuracy": 0.95, "f1_macro": 0.95},
                "diff": {"accuracy": 0.02, "f1_macro": 0.01}},
    "gate": {"verdict": "passed", "detail": "gate PASSED: v2 accuracy=0.9700 vs champion v1"},
    "smoke": {"verdict": "passed", "detail": "ok"},
}
request = PromotionRequest("20261123-120000-wine-v2-abcd", "wine", "staging", "production",
                           "2", "1", "alice", "2026-11-23T12:00:00+00:00", evidence)
request"""


@pytest.mark.slow
def test_a_report_shows_the_request_id_metric_table_and_gate_verdict(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    params = nbformat.v4.new_code_cell("approver = ''")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(REQUEST_NOTEBOOK)]
    source = tmp_path / "03_request.ipynb"
    nbformat.write(nb, source)
    (run,) = runner.run_notebooks([str(source)], output_dir=tmp_path / "out", progress_bar=False)
    html = run.html.read_text()
    assert '<script src="http' not in html and "<script" not in html
    assert "20261123-120000-wine-v2-abcd" in html
    metrics = re.search(r'<table class="mlops-table mlops-metrics">.*?</table>', html, re.S)
    assert metrics and ">candidate</th>" in metrics[0] and "+0.0200" in metrics[0]
    assert "✔ passed" in html and "gate PASSED: v2 accuracy=0.9700 vs champion v1" in html
    assert "promotion" in html.split("03 · ")[0]  # the headline, above everything else

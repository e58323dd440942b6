"""Every result object a notebook cell shows renders as static HTML (and names its headline)."""

from __future__ import annotations

import io
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from IPython.core.formatters import DisplayFormatter

from mlops_kit import display
from mlops_kit.display import FIGURE_MIME, Figure

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def shown(obj: object) -> tuple[str, dict | None]:
    """What a Jupyter kernel would put in the cell: the HTML, and the headline figure if any."""
    data, _ = DisplayFormatter().format(obj)
    assert "text/html" in data, f"{type(obj).__name__} has no rich display"
    html = data["text/html"]
    assert "<script" not in html and "Rich(" not in html
    return html, data.get(FIGURE_MIME)


# -- the helpers -----------------------------------------------------------------------------


def test_values_read_as_people_write_them():
    assert display.text(None) == "–"
    assert display.text(0.123456) == "0.1235"
    assert display.text(12345.6) == "12,346"
    assert display.text(True) == "yes"
    assert display.text(Path(".mlops")) == ".mlops"
    assert display.text(NOW) == "2026-11-23 12:00:00+00:00"
    assert display.text(["a", "b"]) == "a, b"


def test_fragments_escape_what_they_are_given():
    assert "&lt;b&gt;" in display.fields({"x": "<b>"})
    assert "&lt;b&gt;" in display.table([{"x": "<b>"}])
    assert "&lt;" in display.verdict(True, "<no>")
    assert display.badge(False, "failed").count("✘") == 1
    # Html passes through table cells untouched; nested mappings become tables.
    assert "<i>ok</i>" in display.table([{"x": display.Html("<i>ok</i>")}])
    assert display.fields({"outer": {"inner": 1}}).count("<table") == 2


def test_numbers_align_right_and_words_left():
    html = display.table([{"name": "p99", "value": 1.5}])
    assert '<td style="padding:2px 10px 2px 4px;text-align:left">p99' in html
    assert '<td style="padding:2px 10px 2px 4px;text-align:right">1.5' in html


def test_links_point_at_files_that_exist_and_urls(tmp_path):
    report = tmp_path / "02.html"
    report.write_text("x")
    assert f'href="{report.as_uri()}"' in display.link(report)
    assert "<code>" in display.link(tmp_path / "missing.html")
    assert 'href="http://127.0.0.1:1/x"' in display.link("http://127.0.0.1:1/x")


def test_fields_is_a_dict_that_shows_as_a_table():
    written = display.Fields(dashboard=Path("a.json"))
    assert written == {"dashboard": Path("a.json")}
    assert "a.json" in shown(written)[0]


def test_figures_round_trip_through_the_bundle():
    figure = Figure("gate", "passed", True)
    assert Figure.from_json(figure.to_json()) == figure


def test_quiet_holds_back_library_output_unless_the_block_fails(capsys):
    with display.quiet():
        print("INFO mlflow: creating tables", file=sys.stderr)
    assert capsys.readouterr().err == ""
    with pytest.raises(ValueError), display.quiet():
        print("INFO mlflow: the context of a failure", file=sys.stderr)
        raise ValueError("boom")
    assert "the context of a failure" in capsys.readouterr().err


def test_quiet_holds_back_mlflow_logging():
    import logging

    import mlflow  # noqa: F401 - configures the mlflow logger and its stderr stream

    err = io.StringIO()
    saved, sys.stderr = sys.stderr, err
    try:
        with display.quiet():
            logging.getLogger("mlflow.store.db.utils").warning("Creating tables")
    finally:
        sys.stderr = saved
    assert err.getvalue() == ""


# -- the objects cells show ------------------------------------------------------------------


def test_settings_show_as_tables():
    from mlops_kit.settings import Settings, TrainingSettings
    from mlops_kit.settings_loadtest import Slo

    assert "random_forest" in shown(TrainingSettings())[0]
    assert "p99_ms" in shown(Slo())[0]
    html, _ = shown(Settings())
    assert "state_dir" in html and "PosixPath" not in html


def test_project_shows_its_paths_and_environments(tmp_path):
    from mlops_kit.project import Project
    from mlops_kit.settings import load_settings

    html, figure = shown(Project(load_settings(state_dir=tmp_path / "state")))
    assert str(tmp_path / "state") in html and "production (production, local)" in html
    assert figure["label"] == "project"


def test_setup_report_badges_each_check():
    from mlops_kit.targets.base import Check, SetupReport

    report = SetupReport("local", [Check("registry", True, "ok"), Check("cluster", False, "no")])
    html, figure = shown(report)
    assert "✔ ok" in html and "✘ failed" in html
    assert figure == {"label": "set-up (local)", "text": "failed: cluster", "passed": False}


def test_deployment_status_is_one_line():
    from mlops_kit.targets.base import DeploymentStatus

    status = DeploymentStatus("staging", "wine", "3", True, "http://127.0.0.1:1/v2/models/wine")
    html, figure = shown(status)
    assert "staging: wine v3 ready at http://127.0.0.1:1" in html and figure["passed"] is True
    down = DeploymentStatus("staging", "wine", None, False, None, detail="server exited")
    assert "not ready (server exited)" in shown(down)[0]


def test_dataset_and_training_result(wine):
    from mlops_kit.train.training import TrainingResult

    html, figure = shown(wine)
    assert "train_rows" in html and figure["text"].startswith("wine: 133 training")
    result = TrainingResult("wine", "2", "run1", "models:/wine/2", {"accuracy": 0.97777}, {})
    html, figure = shown(result)
    assert "Registered wine v2" in html and "0.9778" in html
    assert figure == {"label": "registered", "text": "wine v2: accuracy 0.9778", "passed": None}


def test_model_version_shows_aliases_and_tags():
    from mlops_kit.registry.client import ModelVersionInfo

    info = ModelVersionInfo(
        "wine", "2", "run1", "s", ("staging",), {"mlops.git_commit": "abc123", "other": "x"}, NOW
    )
    html, _ = shown(info)
    assert "wine v2" in html and "abc123" in html and "staging" in html and "other" not in html


def test_gate_verdict_is_a_badge_with_the_figures():
    from mlops_kit.train.gates import GateVerdict

    verdict = GateVerdict(False, "accuracy", "3", 0.8, "2", 0.95, 0.85, 0.02, ["below"])
    html, figure = shown(verdict)
    assert "✘ FAILED" in html and "0.9500" in html and "v2" in html
    assert figure["label"] == "quality gate" and figure["passed"] is False


def test_deploy_result_sync_report_and_commits():
    from mlops_kit.gitops.commits import Commit, Commits
    from mlops_kit.gitops.deploy import DeployResult
    from mlops_kit.gitops.sync import SyncAction, SyncReport

    report = SyncReport("staging", "0123456789abcdef", [SyncAction("create", "wine", "2")], 0.5)
    assert "create" in shown(report)[0]
    result = DeployResult("staging", "2", "fedcba9876543210", report, "http://127.0.0.1:1/v2")
    html, figure = shown(result)
    assert "staging serves v2" in html and "fedcba9876" in html
    assert figure["label"] == "deploy (staging)"
    commit = Commit("a" * 40, "alice", NOW, "Deploy wine v2", {"Model-Version": "2"})
    html, _ = shown(Commits([commit]))
    assert "aaaaaaaaaa" in html and "Deploy wine v2" in html and "datetime" not in html
    assert "No commits" in shown(Commits())[0]


def test_smoke_result_summarizes_latency():
    from mlops_kit.verify.smoke import SmokeResult

    result = SmokeResult("http://x/infer", True, 4, [42.20250500020484, 24.1, 33.2, 28.8], [], "2")
    html, figure = shown(result)
    assert "p50 31.0" in html and "42.20250500020484" not in html
    assert figure["passed"] is True and "served v2" in figure["text"]
    failed = SmokeResult("http://x/infer", False, 1, [], ["batch: cannot connect"])
    assert "cannot connect" in shown(failed)[0]


def _load_result():
    from mlops_kit.verify.loadtest import LoadTestResult

    return LoadTestResult(
        url="http://127.0.0.1:1/infer", users=10, spawn_rate=10.0, duration_s=5.0, rate=None,
        started_at="2026-11-23T12:00:00+00:00", elapsed_s=5.0, stopped_by="duration",
        requests=1000, failures=10, by_status={"200": 990, "500": 10},
        latency_ms={"p50": 40.0, "p99": 120.5, "min": 10.0, "mean": 45.0, "max": 130.0},
    )  # fmt: skip


def test_load_test_results_and_verdict():
    from mlops_kit.settings_loadtest import Slo
    from mlops_kit.verify import loadtest
    from mlops_kit.verify.loadtest import LoadTestRun
    from mlops_kit.verify.loadtest.evidence import Recorded

    result = _load_result()
    assert "200.0 req/s" in shown(result)[0]
    run = LoadTestRun("staging", "wine", "2", "http://127.0.0.1:1", result, server_note="none")
    html, figure = shown(run)
    assert "Load test of wine v2 in staging" in html and "p99 120.5" in html and "500: 10" in html
    assert figure["label"] == "load test (staging)"
    verdict = loadtest.evaluate(run, Slo(p99_ms=100))
    html, figure = shown(verdict)
    assert "✘ FAILED" in html and "✘ FAIL" in html and figure["passed"] is False
    assert loadtest.enforce(verdict, False) is verdict
    recorded = Recorded("wine v2", {"mlops.loadtest.staging.verdict": "failed"}, None)
    assert "no pending promotion request" in shown(recorded)[0]


def _request(**changes):
    from dataclasses import replace

    from mlops_kit.promote.approvals import PromotionRequest

    request = PromotionRequest(
        id="20261123-120000-wine-v2-abcd", model_name="wine", from_env="staging",
        to_env="production", candidate="2", current="1", requested_by="alice",
        requested_at="2026-11-23T12:00:00+00:00",
        evidence={
            "metrics": {"candidate": {"accuracy": 0.97}, "current": {"accuracy": 0.95},
                        "diff": {"accuracy": 0.02}},
            "gate": {"verdict": "passed", "detail": "gate PASSED: v2 accuracy=0.9700"},
            "smoke": {"verdict": "passed", "detail": "ok"},
            "load_test": {"verdict": "passed", "environment": "staging", "p99_ms": "120.5",
                          "rps": "200.0", "error_rate": "0.0000", "requests": "1000",
                          "report": "build/notebooks/04_load_test.html"},
            "lineage": {"git_commit": "abc123"},
            "reports": ["build/notebooks/02_create_pipeline.html"],
        },
    )  # fmt: skip
    return replace(request, **changes)


def test_promotion_request_shows_its_evidence():
    from mlops_kit.promote.approvals import Decision

    html, figure = shown(_request())
    assert "20261123-120000-wine-v2-abcd" in html
    assert ">candidate</th>" in html and "0.9700" in html and "+0.0200" in html
    assert "gate PASSED" in html and "120.5 ms p99" in html and "abc123" in html
    assert "02_create_pipeline.html" in html and "04_load_test.html" in html
    assert figure["passed"] is None and "pending" in figure["text"]
    done = _request(
        status="rolled_out",
        outcome="production serves v2",
        decisions=(Decision("bob", "approve", "fine", "2026-11-23T12:05:00+00:00"),),
    )
    html, figure = shown(done)
    assert "✔ rolled_out" in html and "bob" in html and figure["passed"] is True


def test_a_request_without_evidence_still_renders():
    html, _ = shown(_request(evidence={}))
    assert "No metrics recorded" in html and "not run" in html


def test_approval_panel_has_a_static_stand_in():
    from mlops_kit.promote.widgets import static_html

    assert "mlops-kit approve 20261123-120000-wine-v2-abcd --as NAME" in static_html(_request())
    done = static_html(_request(status="rejected", outcome="rejected by bob: no"))
    assert "✘ decided" in done and "rejected by bob" in done

"""Load tests against a real MLServer on loopback: figures, bounds, SLO verdicts, notebook 04."""

from __future__ import annotations

import json
import re
import socket
import time

import nbformat
import numpy as np
import pytest

from mlops_kit.errors import (
    ConfigError,
    EndpointUnavailable,
    LoadGeneratorFailed,
    LoadTestError,
    ParameterError,
    RemoteLoadRefused,
    SloFailed,
)
from mlops_kit.notebook import runner
from mlops_kit.settings import load_settings
from mlops_kit.settings_loadtest import LoadLimits, Slo
from mlops_kit.verify import loadtest
from mlops_kit.verify.loadtest import LoadSpec, LoadTestResult, child
from tests.support import NOTEBOOKS, write_project

BODY = json.dumps({"inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP64", "data": [1.0]}]})


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """One wine model served in staging; the servers are stopped afterwards."""
    from mlops_kit.gitops.deploy import deploy
    from mlops_kit.project import Project
    from mlops_kit.targets.local import stop_all
    from mlops_kit.train.training import load_dataset, train_and_register, training_params

    root = tmp_path_factory.mktemp("load")
    project = Project.load(write_project(root), state_dir=root / "state")
    result = train_and_register(project, load_dataset("wine"), training_params(n_estimators=10))
    deployed = deploy(project, "staging", result.version, actor="ci-bot")
    yield project, result.version, deployed.endpoint + "/infer"
    stop_all(project.state_dir)


@pytest.fixture(scope="module")
def run(served):
    """One short load test of staging, shared by the tests that only read it."""
    project, _, _ = served
    return loadtest.load_test(
        project, "staging", users=4, spawn_rate=8, duration_s=2, progress=False
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- against the served model --------------------------------------------------------------------


@pytest.mark.slow
def test_figures_of_a_short_load_are_sane(run):
    r = run.result
    assert r.requests > 20 and r.failures == 0 and r.by_status == {"200": r.requests}
    assert r.stopped_by == "duration" and 1.9 < r.elapsed_s < 3.0
    lat = r.latency_ms
    assert 0 < lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p95"] <= lat["p99"] <= lat["max"]
    assert r.rps == pytest.approx(r.requests / r.elapsed_s)
    assert sum(row["requests"] for row in r.timeline) == r.requests
    assert [row["second"] for row in r.timeline] == [0, 1]
    assert r.timeline[-1]["users"] == 4
    # The server counted the same requests, plus the one sent first and any cut off in flight.
    s = run.server
    assert s is not None and set(s.by_status) == {"200"}
    assert r.requests <= s.requests <= r.requests + 1 + 4
    assert s.model_success == s.requests and s.model_failure == 0
    assert s.p50_ms is not None and s.p50_ms <= s.p99_ms
    assert run.comparison().loc["requests", "client"] == r.requests
    assert json.loads(json.dumps(r.to_dict())) == r.to_dict()
    assert LoadTestResult.from_dict(r.to_dict()) == r


@pytest.mark.slow
def test_the_documented_mlserver_metrics_exist_on_a_live_server(served, run):
    import httpx

    from mlops_kit.targets import for_environment
    from mlops_kit.verify.monitoring import METRICS

    project, _, _ = served
    record = for_environment(project.settings, "staging").server(project.model_name)
    text = httpx.get(record.metrics_url, timeout=5).text
    declared = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, flags=re.MULTILINE))
    # The two queue histograms appear only with parallel workers or adaptive batching.
    optional = {"parallel_request_queue", "batch_request_queue"}
    for metric in METRICS["mlserver"]:
        if metric.name not in optional:
            assert declared.get(metric.name) == metric.type, metric.name


@pytest.mark.slow
def test_the_request_cap_ends_the_run(served):
    _, _, url = served
    began = time.monotonic()
    result = loadtest.run_load(
        LoadSpec(url, _wine_body(served), users=2, duration_s=20, max_requests=30),
        progress=False,
    )
    assert result.stopped_by == "max_requests"
    assert 0 < result.requests <= 30
    assert time.monotonic() - began < 10


@pytest.mark.slow
def test_slo_verdicts_are_tagged_and_attached_to_the_pending_request(served, run):
    from mlops_kit.gitops.deploy import smoke
    from mlops_kit.promote.promotion import Promotions
    from mlops_kit.registry.client import Registry

    project, version, _ = served
    smoke(project, "staging", version)  # staging served it and passed: it may be promoted
    request = Promotions(project).open(version, requested_by="alice")

    verdict = loadtest.evaluate(run, Slo(p99_ms=5_000, max_error_rate=0.01, min_rps=1))
    assert verdict.passed and verdict.reasons == [] and verdict.environment == "staging"
    recorded = loadtest.record(project, run, verdict)
    tags = Registry(project).get(version).tags
    assert tags["mlops.loadtest.staging.verdict"] == "passed"
    assert float(tags["mlops.loadtest.staging.p99_ms"]) == pytest.approx(run.result.p99_ms, 0.01)
    assert float(tags["mlops.loadtest.staging.rps"]) > 1
    assert tags["mlops.loadtest.staging.error_rate"] == "0.0000"
    assert recorded.promotion_request == request.id
    assert request.id in recorded._repr_html_()
    evidence = Promotions(project).get(request.id).evidence["load_test"]
    assert evidence["verdict"] == "passed" and evidence["version"] == version
    assert evidence["server"]["requests"] >= run.result.requests
    assert loadtest.enforce(verdict, fail_on_slo=True) is verdict

    strict = loadtest.evaluate(run, Slo(p99_ms=0.001, max_error_rate=0.0, min_rps=1e9))
    assert not strict.passed
    assert [c.passed for c in strict.checks] == [False, True, False]
    assert "p99 latency" in strict.reasons[0] and "throughput" in strict.reasons[1]
    loadtest.record(project, run, strict)
    assert Registry(project).get(version).tags["mlops.loadtest.staging.verdict"] == "failed"
    assert loadtest.enforce(strict, fail_on_slo=False) is strict
    with pytest.raises(SloFailed, match="missed its SLO: p99 latency"):
        loadtest.enforce(strict, fail_on_slo=True)
    # A request opened now carries the recorded figures as evidence from the start.
    later = Promotions(project).open(version, requested_by="alice")
    assert later.evidence["load_test"]["verdict"] == "failed"


@pytest.mark.slow
def test_notebook_04_runs_under_papermill_and_fails_on_a_missed_slo(served, tmp_path, monkeypatch):
    from mlops_kit.registry.client import Registry

    project, version, _ = served
    monkeypatch.setenv("MLOPS_KIT_CONFIG", str(project.settings.project_file))
    monkeypatch.setenv("MLOPS_KIT_STATE_DIR", str(project.state_dir))
    params = {"users": 4, "spawn_rate": 8, "duration_s": 2, "min_rps": 1e9, "fail_on_slo": True}
    with pytest.raises(runner.NotebookFailed, match="SloFailed: .*throughput") as failed:
        runner.run_notebooks(
            [str(NOTEBOOKS / "04_load_test.ipynb")],
            params,
            output_dir=tmp_path / "build",
            progress_bar=False,
        )
    executed = nbformat.read(failed.value.output_path, as_version=4)
    code = [c for c in executed.cells if c.cell_type == "code"]
    # Every cell ran; only the last one, which enforces the SLO, raised.
    assert all(c.execution_count for c in code)
    assert [o.output_type for o in code[-1].outputs] == ["error"]
    images = [o for c in code for o in c.outputs if "image/png" in o.get("data", {})]
    assert len(images) == 4
    html = (tmp_path / "build" / "04_load_test.html").read_text()
    assert len(re.findall(r'<img[^>]*src="data:image/png;base64', html)) == 4
    assert "<script" not in html and "04_load_test ✘ failed" in html and "SloFailed" in html
    assert Registry(project).get(version).tags["mlops.loadtest.staging.verdict"] == "failed"
    assert json.loads((tmp_path / "build/monitoring/dashboard.json").read_text())["panels"]


# -- failing clearly, within bounds --------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(30)
def test_a_stopped_environment_fails_at_once(served):
    project, _, _ = served
    began = time.monotonic()
    with pytest.raises(EndpointUnavailable, match="is not deployed .*'production'"):
        loadtest.load_test(project, "production", duration_s=2, progress=False)
    assert time.monotonic() - began < 5


@pytest.mark.slow  # runs locust
@pytest.mark.timeout(30)
def test_a_closed_port_fails_fast_and_a_forced_run_ends_on_time():
    url = f"http://127.0.0.1:{free_port()}/v2/models/m/infer"
    began = time.monotonic()
    with pytest.raises(EndpointUnavailable, match="does not answer .*ConnectError"):
        loadtest.run_load(LoadSpec(url, BODY, duration_s=5), progress=False)
    assert time.monotonic() - began < 3
    # Without the first check the generator runs its course: every request refused, in time.
    began = time.monotonic()
    result = loadtest.run_load(
        LoadSpec(url, BODY, users=2, duration_s=1, max_requests=2000),
        progress=False,
        check_first=False,
    )
    assert time.monotonic() - began < 1 + 10
    assert result.requests > 0 and result.failures == result.requests
    assert list(result.by_status) == ["ConnectionRefusedError"]
    assert result.latency_ms["p99"] is None
    verdict = loadtest.evaluate(result)
    assert not verdict.passed
    assert "no request succeeded" in verdict.reasons[0]


@pytest.mark.slow  # runs locust
@pytest.mark.timeout(30)
def test_an_endpoint_that_never_answers_times_out_within_bounds():
    with socket.socket() as silent:  # accepts connections (backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/v2/models/m/infer"
        began = time.monotonic()
        with pytest.raises(EndpointUnavailable, match="did not answer within 1 s"):
            loadtest.run_load(LoadSpec(url, BODY, timeout_s=1), progress=False)
        assert time.monotonic() - began < 3
        began = time.monotonic()
        result = loadtest.run_load(
            LoadSpec(url, BODY, users=2, duration_s=1.5, timeout_s=0.5),
            progress=False,
            check_first=False,
        )
        assert time.monotonic() - began < 1.5 + 0.5 + 10
        assert result.requests > 0 and result.failures == result.requests


@pytest.mark.timeout(30)
def test_a_failing_or_stuck_generator_is_reported_and_killed(monkeypatch):
    url = f"http://127.0.0.1:{free_port()}/x"
    spec = LoadSpec(url, BODY, duration_s=0.5, timeout_s=0.5)
    monkeypatch.setattr(child, "_CHILD", "import sys; sys.stderr.write('boom'); sys.exit(3)")
    with pytest.raises(LoadGeneratorFailed, match="(?s)exit code 3.*boom") as failed:
        loadtest.run_load(spec, progress=False, check_first=False)
    assert failed.value.returncode == 3 and failed.value.output == "boom"
    monkeypatch.setattr(child, "_CHILD", "import time; time.sleep(60)")
    monkeypatch.setattr(child, "_STARTUP_ALLOWANCE", 1.0)
    began = time.monotonic()
    with pytest.raises(LoadTestError, match="did not stop within 2 s; killed it"):
        loadtest.run_load(spec, progress=False, check_first=False)
    assert time.monotonic() - began < 5


# -- refusals and bounds, no server --------------------------------------------------------------


def test_non_loopback_hosts_are_refused_unless_allowed():
    for url in ("http://192.0.2.10:8080/v2/models/m/infer", "https://example.invalid/infer"):
        with pytest.raises(RemoteLoadRefused, match="not a loopback address.*allow_remote"):
            loadtest.run_load(LoadSpec(url, BODY), progress=False)
    assert loadtest.check_host("http://localhost:1/x") == "localhost"
    assert loadtest.check_host("http://127.0.0.2:1/x") == "127.0.0.2"
    assert loadtest.check_host("http://[::1]:1/x") == "::1"
    assert loadtest.check_host("http://192.0.2.10/x", allow_remote=True) == "192.0.2.10"
    with pytest.raises(ParameterError, match="'url'"):
        loadtest.check_host("ftp://127.0.0.1/x")


@pytest.mark.parametrize(
    ("change", "name"),
    [
        ({"users": 101}, "users"),
        ({"users": 0}, "users"),
        ({"users": 2.5}, "users"),
        ({"duration_s": 301}, "duration_s"),
        ({"duration_s": 0}, "duration_s"),
        ({"spawn_rate": 0}, "spawn_rate"),
        ({"max_requests": 500_001}, "max_requests"),
        ({"rate": -1}, "rate"),
        ({"timeout_s": 61}, "timeout_s"),
        ({"body": "{not json"}, "body"),
    ],
)
def test_bounds_are_enforced_before_anything_runs(change, name):
    spec = LoadSpec(**{"url": "http://127.0.0.1:9/x", "body": BODY, **change})
    with pytest.raises(ParameterError, match=f"'{name}'"):
        loadtest.run_load(spec, progress=False)


def test_configured_limits_and_objectives(project):
    assert project.settings.load_test.limits == LoadLimits()
    assert loadtest.slo_from(project.settings) == Slo()
    assert loadtest.slo_from(project.settings, p99_ms=50).p99_ms == 50
    with pytest.raises(ParameterError, match="'max_error_rate'"):
        loadtest.slo_from(max_error_rate=2)
    for bad in (True, "50", float("nan"), -1):
        with pytest.raises(ParameterError, match="'p99_ms'"):
            loadtest.slo_from(p99_ms=bad)


def test_the_project_file_sets_limits_and_objectives(tmp_path):
    path = tmp_path / "mlops.yaml"
    path.write_text(
        "model_name: m\nload_test:\n  limits: {max_users: 3}\n  slo: {p99_ms: 40, min_rps: 0}\n"
        "  allow_remote: true\n"
    )
    settings = load_settings(path)
    assert settings.load_test.limits == LoadLimits(max_users=3)
    assert loadtest.slo_from(settings) == Slo(p99_ms=40, min_rps=0)
    assert loadtest.slo_from(settings, min_rps=5).min_rps == 5
    with pytest.raises(ParameterError, match="'users'.*at most 3"):
        LoadSpec("http://127.0.0.1:9/x", BODY, users=4).checked(settings.load_test.limits)
    path.write_text(
        "model_name: m\nload_test:\n  slo: {max_error_rate: 2}\n  limits: {max_users: 0}\n"
    )
    with pytest.raises(ConfigError, match=r"load_test\.limits\.max_users: .*slo\.max_error_rate"):
        load_settings(path)
    path.write_text("model_name: m\nload_test:\n  p99_ms: 100\n")  # objectives sit under ``slo:``
    with pytest.raises(ConfigError, match=r"load_test\.p99_ms: .*\(unknown field\)"):
        load_settings(path)
    with pytest.raises(ParameterError, match="'fail_on_slo'"):
        loadtest.enforce(loadtest.evaluate(_result([200])), fail_on_slo="yes")


# -- aggregation, no server ----------------------------------------------------------------------


def _result(status, start=None, latency=None, kinds=(), elapsed=1.0):
    status = np.asarray(status, dtype=np.int32)
    n = status.size
    start = np.linspace(0, elapsed * 0.9, n) if start is None else np.asarray(start, float)
    latency = np.full(n, 0.01) if latency is None else np.asarray(latency, float)
    spec = LoadSpec("http://127.0.0.1:1/x", BODY, users=2, duration_s=elapsed)
    return LoadTestResult.from_samples(
        spec,
        start=start,
        latency=latency,
        status=status,
        kinds=list(kinds),
        elapsed_s=elapsed,
        stopped_by="duration",
        started_at="2026-01-01T00:00:00+00:00",
        users_at=[(0.0, 1), (0.5, 2)],
    )


def test_samples_are_aggregated_by_status_and_second():
    result = _result(
        [200, 200, 422, -1, 200, -2, 200],
        start=[0.1, 0.2, 0.3, 0.4, 1.2, 1.5, 2.05],
        latency=[0.010, 0.020, 0.001, 0.001, 0.030, 0.001, 0.04],
        kinds=["ConnectionRefusedError", "ConnectTimeout"],
        elapsed=2.2,
    )
    assert result.by_status == {
        "200": 4,
        "422": 1,
        "ConnectionRefusedError": 1,
        "ConnectTimeout": 1,
    }
    assert result.failures == 3 and result.error_rate == pytest.approx(3 / 7)
    # Percentiles cover successful requests only.
    assert result.latency_ms["min"] == 10 and result.latency_ms["max"] == 40
    # 2.2 s make two buckets: the last 0.2 s join the second one.
    assert [row["requests"] for row in result.timeline] == [4, 3]
    assert result.timeline[0]["by_status"] == {"422": 1, "ConnectionRefusedError": 1}
    assert result.timeline[1]["rps"] == pytest.approx(3 / 1.2, abs=0.01)
    assert [row["users"] for row in result.timeline] == [2, 2]
    frame = result.timeline_frame()
    assert frame["status_ConnectTimeout"].tolist() == [0, 1]


def test_nothing_completed_is_a_failure_not_a_crash():
    result = _result([])
    assert result.requests == 0 and result.error_rate == 1.0 and result.rps == 0
    verdict = loadtest.evaluate(result)
    assert not verdict.passed
    assert verdict.reasons[1] == "no request completed"


def _wine_body(served) -> str:
    project, version, _ = served
    return loadtest.request_body(project, version)

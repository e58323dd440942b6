"""The local Prometheus (Debian's 2.42) over the local endpoints, its PromQL client and the
canary analysis' per-version figures; the slow tests evaluate the generated dashboard on it."""

from __future__ import annotations

import json
import math
import re
import time

import promql_parser
import pytest
import yaml

from mlops_kit.cli import main
from mlops_kit.errors import ConfigError, PrometheusMissing, QueryFailed
from mlops_kit.process import wait_until
from mlops_kit.project import Project
from mlops_kit.targets.local.records import SCRAPE_TARGETS_FILE, publish_targets
from mlops_kit.verify import loadtest, monitoring
from mlops_kit.verify.monitoring import analysis, prometheus
from mlops_kit.verify.monitoring.promql import PrometheusClient
from mlops_kit.verify.monitoring.queries import ERRORS_BY_VERSION, P99_BY_VERSION
from tests.support import seeded_registry, write_project

# -- no server ------------------------------------------------------------------------------


def test_the_generated_configuration_discovers_endpoints_from_the_state_dir(project):
    config = prometheus.config(project)
    assert config["global"]["scrape_interval"] == "1000ms"
    (job,) = config["scrape_configs"]
    assert job["honor_labels"] is True  # a sample's own version label wins over the endpoint's
    (sd,) = job["file_sd_configs"]
    assert sd["files"] == [str(project.state_dir / "serving" / SCRAPE_TARGETS_FILE)]


def test_the_scrape_interval_is_a_setting(tmp_path):
    path = write_project(tmp_path / "p", monitor={"scrape_interval_s": 2.5})
    project = Project.load(path, state_dir=tmp_path / "state")
    config = prometheus.config(project)
    assert config["global"]["scrape_interval"] == "2500ms"
    assert config["global"]["scrape_timeout"] == "2500ms"


def test_without_prometheus_it_says_how_to_get_it_and_scrapes_directly(tmp_path, caplog):
    path = write_project(tmp_path / "p", monitor={"binary": "no-such-prometheus"})
    project = Project.load(path, state_dir=tmp_path / "state")
    with pytest.raises(PrometheusMissing, match=r"apt-get install prometheus"):
        prometheus.start(project)
    assert analysis.prometheus_for(project, "staging") is None  # rollouts scrape directly
    assert "apt-get install prometheus" in caplog.text
    board = monitoring.live_dashboard(project, "staging")
    assert board.source is None and "apt-get install prometheus" in board.summary()


def test_a_cluster_environment_needs_the_clusters_prometheus(tmp_path):
    envs = [
        {"name": "staging", "kind": "staging", "target": "kubernetes"},
        {"name": "production", "kind": "production", "target": "kubernetes"},
    ]
    project = Project.load(write_project(tmp_path / "p", environments=envs))
    with pytest.raises(ConfigError, match="set monitor.prometheus_url"):
        analysis.prometheus_for(project, "staging")
    v2 = Project.load(tmp_path / "p" / "mlops.yaml", gitops={"manifest": "seldon-v2"},
                      monitor={"prometheus_url": "http://127.0.0.1:9"})  # fmt: skip
    with pytest.raises(ConfigError, match="per-version latency cannot be judged"):
        analysis.prometheus_for(v2, "staging")


def test_no_record_no_target(tmp_path):
    root = tmp_path / "serving"
    (root / "staging" / "wine").mkdir(parents=True)
    # A record of a process that is not ours (pid 1 never has this folder in its arguments).
    (root / "staging" / "wine" / "server.json").write_text(
        json.dumps(
            {
                "pid": 1, "pgid": 1, "host": "127.0.0.1", "http_port": 1, "grpc_port": 2,
                "metrics_port": 3, "version": "1", "model_uri": "x", "implementation": "x",
                "started_at": "", "folder": str(root / "staging" / "wine"),
            }
        )
    )  # fmt: skip
    assert json.loads(publish_targets(root).read_text()) == []


def test_dashboard_variables_are_filled_in_as_grafana_does():
    expr = 'rate(x{namespace=~"$namespace", version=~"$version"}[$__rate_interval])'
    assert monitoring.instantiate(expr, {"__rate_interval": "30s", "version": "3"}) == (
        'rate(x{namespace=~".*", version=~"3"}[30s])'
    )
    with pytest.raises(ConfigError, match="rate interval"):
        monitoring.instantiate(expr, {})


@pytest.mark.parametrize("flavour", ["mlops-kit", "seldon-v1"])
def test_the_analysis_evaluates_the_dashboards_own_panels(flavour):
    source = analysis.PrometheusMetrics(
        PrometheusClient("http://127.0.0.1:9"), flavour=flavour, model="wine.v2"
    )
    exprs = source.expressions("staging", "3", 20.0)
    for title, expr in exprs.items():
        assert "$" not in expr
        promql_parser.parse(expr)  # raises on anything that is not PromQL
        panel = monitoring.queries(flavour)
        assert title in [q.title for q in panel]
    assert "[20s]" in exprs[P99_BY_VERSION] and '"3"' in exprs[ERRORS_BY_VERSION]
    assert "wine\\\\.v2" in exprs[P99_BY_VERSION]  # a regex-quoted model name


def test_a_refused_or_unreachable_query_is_one_clear_error():
    client = PrometheusClient("http://127.0.0.1:9", timeout=1)
    with pytest.raises(QueryFailed, match=r"127\.0\.0\.1:9 could not answer 'up'"):
        client.query("up")


# -- a real Prometheus over a real endpoint ------------------------------------------------------


@pytest.fixture(scope="module")
def monitored(tmp_path_factory):
    """Staging served, the local Prometheus scraping it, a bounded load test run."""
    from mlops_kit.gitops.deploy import deploy
    from mlops_kit.targets.local import stop_all
    from mlops_kit.train.training import load_dataset, train_and_register, training_params

    root = tmp_path_factory.mktemp("monitored")
    seeded_registry(root / "state")  # the registry's schema is not what these are about
    project = Project.load(write_project(root), state_dir=root / "state")
    monitor = prometheus.start(project)
    try:
        result = train_and_register(project, load_dataset("wine"), training_params(n_estimators=10))
        deploy(project, "staging", result.version, actor="ci-bot")
        client = PrometheusClient(monitor.url)
        # Prometheus hands discovered targets to its scrapers every 5 s: wait for two scrapes.
        two_scrapes = 'count_over_time(up{pod="staging/wine-classifier"}[1m]) > 1'
        analysis.wait_for_scrape(client, two_scrapes)
        run = loadtest.load_test(
            project, "staging", users=4, spawn_rate=8, duration_s=3, progress=False
        )
        # The samples after the load's last request (one scrape a second) are in.
        wait_until(
            lambda: (client.value("sum(mlops_kit_inferences_total)") or 0) >= run.result.requests,
            timeout=15,
            interval=0.5,
            what="the load's requests in Prometheus",
        )
        yield project, monitor, client, result.version, run
    finally:
        stop_all(project.state_dir)
        prometheus.stop(project)


@pytest.mark.slow
def test_every_query_of_the_generated_dashboard_returns_data(monitored, tmp_path):
    project, monitor, client, _, _ = monitored
    written = monitoring.write_dashboard(tmp_path, monitoring.LOCAL_FLAVOURS)
    board = json.loads(written["dashboard"].read_text())
    exprs = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    assert len(exprs) == sum(len(monitoring.queries(f)) for f in monitoring.LOCAL_FLAVOURS)
    empty = []
    for expr in exprs:
        # Grafana's "All" for every variable, a rate interval covering the load.
        samples = client.query(monitoring.instantiate(expr, {"__rate_interval": "30s"}))
        if not samples or all(math.isnan(s.value) for s in samples):
            empty.append(expr)
    assert not empty, f"{len(empty)} of {len(exprs)} queries returned no data: {empty}"
    live = monitoring.live_dashboard(project, "staging", window_s=30)
    assert live.source == monitor.url and live.answered == len(live.rows) == len(exprs)


@pytest.mark.slow
def test_a_versions_figures_come_from_the_dashboards_promql(monitored):
    project, monitor, _, version, run = monitored
    source = analysis.prometheus_for(project, "staging")
    assert source is not None
    figures = source.metrics_for("staging", version, 30.0)
    assert figures.source == monitor.url
    # rate x window extrapolates like increase(): near the requests sent, not exact.
    assert 0.5 * run.result.requests <= figures.requests <= 2 * run.result.requests + 10
    assert figures.errors == 0 and figures.error_rate == 0.0
    assert figures.p99_ms is not None and 0 < figures.p99_ms < 10_000
    assert source.metrics_for("staging", "999", 30.0).requests == 0


@pytest.mark.slow
def test_endpoints_are_discovered_labelled_and_dropped_from_the_state_dir(monitored):
    project, _, client, version, _ = monitored
    (up,) = client.query('up{job="mlops-kit"}')
    assert up.value == 1.0
    assert {k: up.labels[k] for k in ("environment", "namespace", "model", "version", "pod")} == {
        "environment": "staging",
        "namespace": "staging",
        "model": "wine-classifier",
        "version": version,
        "pod": "staging/wine-classifier",
    }
    assert client.query_range('up{job="mlops-kit"}', start=time.time() - 5, end=time.time(), step=1)


@pytest.mark.slow
def test_the_cli_starts_reports_and_down_stops_it(tmp_path, capsys):
    config = write_project(tmp_path / "cli")
    state = tmp_path / "cli" / ".mlops"
    args = ["--config", str(config)]
    assert main(["monitor", *args, "--query", "vector(1)"]) == 0
    out = capsys.readouterr().out
    url = re.search(r"Prometheus at (http://127\.0\.0\.1:\d+)", out)[1]
    assert "{} 1" in out and (state / "monitoring" / "data").is_dir()
    assert yaml.safe_load((state / "monitoring" / "prometheus.yml").read_text())["scrape_configs"]
    assert main(["monitor", *args]) == 0 and url in capsys.readouterr().out  # the same one
    assert main(["monitor", *args, "--status"]) == 0
    assert main(["down", *args]) == 0
    assert "Prometheus" in capsys.readouterr().out
    assert main(["monitor", *args, "--status"]) == 1
    assert "not running" in capsys.readouterr().out


@pytest.mark.slow
def test_notebook_04_shows_what_prometheus_recorded(monitored, tmp_path, monkeypatch):
    import nbformat

    from mlops_kit.notebook import runner
    from tests.support import NOTEBOOKS

    project, monitor, _, _, _ = monitored
    monkeypatch.setenv("MLOPS_KIT_CONFIG", str(project.settings.project_file))
    monkeypatch.setenv("MLOPS_KIT_STATE_DIR", str(project.state_dir))
    params = {"users": 2, "spawn_rate": 4, "duration_s": 2}
    runner.run_notebooks([str(NOTEBOOKS / "04_load_test.ipynb")], params,
                         output_dir=tmp_path / "build", progress_bar=False)  # fmt: skip
    executed = nbformat.read(tmp_path / "build" / "04_load_test.ipynb", as_version=4)
    shown = [
        o["data"]["text/html"]
        for c in executed.cells
        if c.cell_type == "code" and "live_dashboard" in c.source
        for o in c.outputs
        if "text/html" in o.get("data", {})
    ]
    total = sum(len(monitoring.queries(f)) for f in monitoring.LOCAL_FLAVOURS)
    assert shown and f"{total} of {total} dashboard queries answered by {monitor.url}" in shown[0]

"""The Kubernetes analysis' PromQL over Seldon v1's executor metrics, evaluated by a real
Prometheus (the local one, ``monitor.prometheus_url`` pointing at it).

No Seldon executor runs here: a stand-in exporter serves the executor's metric family
(``seldon_api_executor_server_requests_seconds``, the labels Seldon Core 1.18 gives it, each
predictor's ``version`` label as ``predictor_version``) on loopback, and the local Prometheus
scrapes it like a cluster's Prometheus scrapes the executor.
"""

from __future__ import annotations

import json

import pytest
from prometheus_client import CollectorRegistry, Histogram, start_http_server

from mlops_kit.process import free_ports, wait_until
from mlops_kit.project import Project
from mlops_kit.verify.monitoring import analysis, prometheus
from mlops_kit.verify.monitoring.promql import PrometheusClient
from tests.support import write_project

NS = "mlops-demo-staging"
LABELS = ["code", "deployment_name", "method", "predictor_name", "predictor_version", "service"]


@pytest.mark.slow
def test_the_kubernetes_analysis_reads_a_version_from_seldons_executor_metrics(tmp_path):
    registry = CollectorRegistry()
    executor = Histogram(
        "seldon_api_executor_server_requests_seconds", "executor requests", LABELS,
        registry=registry,
    )  # fmt: skip
    port = free_ports("127.0.0.1")[0]
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    envs = [
        {"name": "staging", "kind": "staging", "target": "kubernetes"},
        {"name": "production", "kind": "production", "target": "kubernetes"},
    ]
    project = Project.load(write_project(tmp_path / "p", environments=envs),
                           state_dir=tmp_path / "state")  # fmt: skip
    monitor = prometheus.start(project)
    try:
        project = Project(
            project.settings.model_copy(
                update={"monitor": project.settings.monitor.model_copy(
                    update={"prometheus_url": monitor.url})},
            )
        )  # fmt: skip

        def observe(version: str, code: str, seconds: float, n: int) -> None:
            labels = ("wine-classifier", "POST", f"v{version}", version, "predictions")
            for _ in range(n):
                executor.labels(code, *labels).observe(seconds)

        observe("1", "200", 0.02, 1)
        observe("2", "200", 0.2, 1)
        # Every series exists before the counted window: rate() cannot count what a series
        # held at its first sample (an executor's first error in a new series is missed).
        observe("2", "500", 0.2, 1)
        # The executor, as a cluster's Prometheus finds it (the namespace label included).
        sd = prometheus.targets_file(project)
        sd.write_text(json.dumps([{"targets": [f"127.0.0.1:{port}"], "labels": {"namespace": NS}}]))
        client = PrometheusClient(monitor.url)
        series = 'seldon_api_executor_server_requests_seconds_count{predictor_version="2"}'
        analysis.wait_for_scrape(client, f"count_over_time({series}[1m]) > 1")
        observe("1", "200", 0.02, 90)
        observe("2", "200", 0.2, 8)
        observe("2", "500", 0.2, 2)
        wait_until(lambda: (client.value(f"sum({series})") or 0) >= 12, timeout=15, interval=0.5,
                   what="the new samples")  # fmt: skip

        source = analysis.prometheus_for(project, "staging")
        assert source is not None and source.flavour == "seldon-v1"
        figures = source.metrics_for("staging", "2", 30.0)
        stable = source.metrics_for("staging", "1", 30.0)
    finally:
        prometheus.stop(project)
        server.shutdown()
        thread.join(5)
    # rate() x window extrapolates like increase(): near the counts, not exact.
    assert 5 <= figures.requests <= 20 and 1 <= figures.errors <= 4
    assert figures.error_rate == pytest.approx(0.2, abs=0.1)  # extrapolated per series
    assert 100 <= figures.p99_ms <= 250  # in the (0.1, 0.25] bucket
    assert 45 <= stable.requests <= 180 and stable.errors == 0
    assert stable.p99_ms <= 25

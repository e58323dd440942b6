"""The Grafana dashboard, its PromQL, and reading MLServer's metrics — no server needed."""

from __future__ import annotations

import json
import math
import re

import promql_parser
import pytest

from mlops_kit.errors import ConfigError
from mlops_kit.verify import monitoring
from mlops_kit.verify.monitoring import MetricsSnapshot, histogram_quantile


def _grafana_to_promql(expr: str) -> str:
    """What Grafana sends: its variables interpolated."""
    expr = expr.replace("$__rate_interval", "1m").replace("$__interval", "1m")
    return re.sub(r"\$\{?(\w+)\}?", r".*", expr)


ALL = [q for f in monitoring.FLAVOURS for q in monitoring.queries(f)]


def test_dashboard_structure():
    board = monitoring.dashboard(monitoring.FLAVOURS)
    assert json.loads(json.dumps(board)) == board
    assert board["uid"] and board["title"] and board["schemaVersion"] >= 36
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert {"namespace", "model", "deployment", "version"} <= set(variables)
    for var in variables.values():
        if var["type"] == "query":
            assert var["datasource"]["uid"] == "${datasource}"
            found = re.fullmatch(r"label_values\((?:(\w+), )?(\w+)\)", var["definition"])
            assert found, var["definition"]
            assert found[1] is None or found[1] in monitoring.metric_names()

    panels = board["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    rows = [p for p in panels if p["type"] == "row"]
    assert [r["title"] for r in rows] == [
        "MLServer",
        "mlops-kit runtime, per version",
        "Seldon Core v1 (executor)",
        "Seldon Core v2",
    ]
    graphs = [p for p in panels if p["type"] != "row"]
    assert len(graphs) == len(ALL)
    occupied = set()
    for panel in graphs:
        assert panel["type"] == "timeseries" and panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24 and grid["h"] > 0
        cells = {(grid["x"] // 12, grid["y"] + dy) for dy in range(grid["h"])}
        assert not cells & occupied, f"{panel['title']} overlaps another panel"
        occupied |= cells
        assert panel["fieldConfig"]["defaults"]["unit"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["refId"] and target["datasource"]["uid"] == "${datasource}"
            assert isinstance(target["expr"], str) and target["expr"].strip()


def _selected_metrics(expr: str) -> set[str]:
    """Metric names ``expr`` selects, by promql-parser (which raises on anything not PromQL)."""
    selected = set()

    def visit(node):
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            selected.add(node.name)
        for attr in ("expr", "lhs", "rhs", "vector_selector"):
            child = getattr(node, attr, None)
            if child is not None:
                visit(child)
        for arg in getattr(node, "args", None) or []:
            visit(arg)

    visit(promql_parser.parse(_grafana_to_promql(expr)))
    return selected


@pytest.mark.parametrize("query", ALL, ids=lambda q: q.title)
def test_every_query_parses_and_names_documented_metrics(query):
    # Grafana's variables interpolated, as Grafana sends the query to Prometheus.
    selected = _selected_metrics(query.expr)
    assert selected and selected <= monitoring.metric_names()


@pytest.mark.parametrize(
    ("expr", "problem"),
    [
        ("sum(rate(rest_server_requests_total[5m])", "unclosed left parenthesis"),
        ("sum(rate(rest_server_requests_total[5m)))", "unexpected character inside brackets"),
        ('rest_server_requests_total{path="x}', "unterminated quoted string"),
        ("rates(rest_server_requests_total[5m])", "unknown function with name 'rates'"),
    ],
)
def test_the_parser_refuses_what_is_not_promql(expr, problem):
    with pytest.raises(ValueError, match=re.escape(problem)):
        promql_parser.parse(expr)


def test_a_metric_outside_the_sets_is_noticed():
    assert _selected_metrics("rate(nonexistent_metric_total[5m])") == {"nonexistent_metric_total"}
    ok = 'sum by (le, pod) (rate(rest_server_request_duration_seconds_bucket{a=~"$x"}[1m]))'
    assert _selected_metrics(ok) <= monitoring.metric_names()


def test_metric_sets_and_unknown_ones():
    names = monitoring.metric_names(["mlserver"])
    assert {"rest_server_request_duration_seconds_bucket", "model_infer_request_duration_sum"} <= (
        names
    )
    assert "seldon_model_infer_total" in monitoring.metric_names(["seldon-v2"])
    with pytest.raises(ConfigError, match="no metric set"):
        monitoring.queries("triton")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="metric sets"):
        monitoring.dashboard(["triton"])  # type: ignore[list-item]


def test_write_dashboard(tmp_path):
    written = monitoring.write_dashboard(tmp_path / "monitoring")
    board = json.loads(written["dashboard"].read_text())
    assert board["panels"] and written["dashboard"].name == "dashboard.json"
    listed = json.loads(written["queries"].read_text())
    assert set(listed) == set(monitoring.FLAVOURS)
    assert all(q["expr"] for qs in listed.values() for q in qs)
    assert len(monitoring.query_table()) == len(ALL)


def test_histogram_quantile_interpolates_like_prometheus():
    buckets = {0.005: 4.0, 0.01: 17.0, 0.025: 20.0, math.inf: 20.0}
    assert histogram_quantile(0.5, buckets) == pytest.approx(0.005 + 0.005 * 6 / 13)
    assert histogram_quantile(1.0, buckets) == pytest.approx(0.025)
    assert histogram_quantile(0.99, {0.1: 0.0, math.inf: 5.0}) == 0.1  # beyond the last bound
    assert histogram_quantile(0.5, {0.1: 0.0, math.inf: 0.0}) is None
    assert histogram_quantile(0.5, {}) is None


def _snapshot(taken_at, ok, refused, bucket_counts, cpu):
    infer = (
        ("app_name", "mlserver"),
        ("method", "POST"),
        ("path", "/v2/models/{model_name}/infer"),
    )
    samples = [
        ("rest_server_requests_total", (*infer, ("status_code", "200")), ok),
        ("rest_server_requests_total", (*infer, ("status_code", "422")), refused),
        (
            "rest_server_requests_total",
            (("method", "GET"), ("path", "/v2/health/ready"), ("status_code", "200")),
            99.0,
        ),
        ("rest_server_request_duration_seconds_count", (*infer, ("status_code", "200")), ok),
        ("rest_server_request_duration_seconds_sum", (*infer, ("status_code", "200")), ok * 0.01),
        ("model_infer_request_success_total", (("model", "m"), ("version", "None")), ok),
        ("model_infer_request_duration_count", (("model", "m"), ("version", "None")), ok),
        ("model_infer_request_duration_sum", (("model", "m"), ("version", "None")), ok * 0.004),
        ("process_cpu_seconds_total", (), cpu),
        ("process_resident_memory_bytes", (), 300.0 * 2**20),
    ]
    for le, count in bucket_counts.items():
        labels = (*infer, ("le", le), ("status_code", "200"))
        samples.append(("rest_server_request_duration_seconds_bucket", labels, count))
    return MetricsSnapshot("http://127.0.0.1:1/metrics", taken_at, tuple(samples))


def test_server_figures_are_the_difference_of_two_scrapes():
    before = _snapshot(100.0, 10.0, 1.0, {"0.005": 5.0, "0.01": 10.0, "+Inf": 10.0}, 2.0)
    after = _snapshot(102.0, 110.0, 3.0, {"0.005": 55.0, "0.01": 110.0, "+Inf": 110.0}, 3.0)
    figures = monitoring.server_figures(before, after, "m")
    assert figures.by_status == {"200": 100, "422": 2}
    assert figures.requests == 102 and figures.errors == 2 and figures.rps == 51
    assert figures.mean_ms == pytest.approx(10.0)
    assert figures.p50_ms == pytest.approx(5.0)
    assert figures.p99_ms == pytest.approx(5.0 + 5.0 * 49 / 50)
    assert figures.model_success == 100 and figures.model_mean_ms == pytest.approx(4.0)
    assert figures.cpu_percent == pytest.approx(50.0) and figures.rss_mb == pytest.approx(300)
    assert json.loads(json.dumps(figures.to_dict()))["requests"] == 102

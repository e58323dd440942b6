"""Server-side metrics: MLServer / Seldon Core metric names, scrapes, PromQL, a Grafana dashboard.

Four modules, none needing a server of its own:

* :mod:`.metrics`: :data:`METRICS`, the catalogue of the Prometheus series the serving stacks
  expose (MLServer 1.7, the Seldon Core v1 executor, the Seldon Core v2 agent);
* :mod:`.scrape`: :func:`scrape` and :func:`server_figures`, which read a server's ``/metrics``
  before and after a load test and turn the difference into request counts, status codes and
  latency quantiles (estimated from histogram buckets as PromQL's ``histogram_quantile`` does);
* :mod:`.queries`: :func:`queries`, the PromQL behind the dashboard for a cluster;
* :mod:`.dashboard`: :func:`dashboard`, and :func:`write_dashboard` to put it and the queries
  under ``build/monitoring/``;
* :mod:`.prometheus`: the local Prometheus (``mlops-kit monitor``), scraping every local
  endpoint through file-based discovery; :mod:`.promql`: :class:`PrometheusClient`, the HTTP
  API's instant and range queries;
* :mod:`.analysis`: :func:`prometheus_for` and ``metrics_for(environment, version, window)``,
  a version's requests, errors and p99 for a canary, from the dashboard's own PromQL;
* :mod:`.live`: the dashboard's queries evaluated on the local Prometheus (notebook 04).
"""

from mlops_kit.verify.monitoring.analysis import (
    PrometheusMetrics,
    VersionMetrics,
    prometheus_for,
)
from mlops_kit.verify.monitoring.dashboard import dashboard, write_dashboard
from mlops_kit.verify.monitoring.live import LiveDashboard, live_dashboard
from mlops_kit.verify.monitoring.metrics import (
    FLAVOURS,
    LOCAL_FLAVOURS,
    METRICS,
    Flavour,
    Metric,
    metric_names,
)
from mlops_kit.verify.monitoring.promql import PrometheusClient
from mlops_kit.verify.monitoring.queries import Query, instantiate, queries, query_table
from mlops_kit.verify.monitoring.scrape import (
    MetricsSnapshot,
    ServerFigures,
    histogram_quantile,
    scrape,
    server_figures,
)

__all__ = [
    "FLAVOURS",
    "LOCAL_FLAVOURS",
    "METRICS",
    "Flavour",
    "Metric",
    "MetricsSnapshot",
    "PrometheusClient",
    "PrometheusMetrics",
    "Query",
    "ServerFigures",
    "VersionMetrics",
    "dashboard",
    "LiveDashboard",
    "histogram_quantile",
    "live_dashboard",
    "instantiate",
    "metric_names",
    "prometheus_for",
    "queries",
    "query_table",
    "scrape",
    "server_figures",
    "write_dashboard",
]

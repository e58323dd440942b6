"""The catalogue of Prometheus series the serving stacks expose, by metric set.

MLServer 1.7 (checked by scraping a live server), the Seldon Core v1 executor and the Seldon Core
v2 agent (from their documentation and source).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

Flavour = Literal["mlserver", "mlops-kit", "seldon-v1", "seldon-v2"]
FLAVOURS: tuple[Flavour, ...] = ("mlserver", "mlops-kit", "seldon-v1", "seldon-v2")
"""Metric sets: MLServer itself (local target, Seldon v2 servers), the toolkit's runtime (per
version, local target), Seldon v1 executor, Seldon v2."""
LOCAL_FLAVOURS: tuple[Flavour, ...] = ("mlserver", "mlops-kit")
"""The metric sets a local endpoint exports: its dashboard, evaluated by the local Prometheus."""


@dataclass(frozen=True)
class Metric:
    """One Prometheus metric family as its exporter declares it."""

    name: str
    type: Literal["counter", "gauge", "histogram", "summary"]
    labels: tuple[str, ...]
    help: str


def _m(name: str, kind: Any, labels: str, text: str) -> Metric:
    return Metric(name, kind, tuple(labels.split()), text)


# MLServer 1.7.1: scraped from a live server (``rest_server_*`` come from starlette_exporter with
# MLServer's default ``metrics_rest_server_prefix``; ``model_infer_*`` from its data plane).
_MLSERVER = (
    _m(
        "rest_server_requests_total",
        "counter",
        "app_name method path status_code",
        "HTTP requests by route template and status",
    ),
    _m(
        "rest_server_request_duration_seconds",
        "histogram",
        "app_name method path status_code",
        "HTTP request duration, seconds (buckets 5 ms .. 10 s)",
    ),
    _m("rest_server_requests_in_progress", "gauge", "app_name method", "HTTP requests in flight"),
    _m("model_infer_request_success_total", "counter", "model version", "successful inferences"),
    _m("model_infer_request_failure_total", "counter", "model version", "failed inferences"),
    _m("model_infer_request_duration", "summary", "model version", "inference duration, seconds"),
    _m("parallel_request_queue", "histogram", "", "requests queued for inference workers"),
    _m(
        "batch_request_queue",
        "histogram",
        "model_name model_version",
        "requests queued for adaptive batching",
    ),
    _m(
        "grpc_server_handled_total",
        "counter",
        "grpc_type grpc_service grpc_method grpc_code",
        "gRPC calls completed",
    ),
    _m(
        "grpc_server_handling_seconds",
        "histogram",
        "grpc_type grpc_service grpc_method",
        "gRPC call duration, seconds",
    ),
    _m("process_cpu_seconds_total", "counter", "", "CPU time of the server process"),
    _m("process_resident_memory_bytes", "gauge", "", "resident memory of the server process"),
)

# The toolkit's runtime (mlops_kit/serving/metrics.py): per version, for the canary analysis.
_MLOPS_KIT = (
    _m(
        "mlops_kit_inferences_total",
        "counter",
        "model version outcome",
        "inference requests answered, by version and outcome (ok, invalid, error)",
    ),
    _m(
        "mlops_kit_inference_seconds",
        "histogram",
        "model version",
        "time a version took to answer, seconds (buckets 1 ms .. 10 s)",
    ),
    _m("mlops_kit_batch_requests", "histogram", "model_name model_version", "requests per batch"),
    _m(
        "mlops_kit_batch_fallbacks_total",
        "counter",
        "model_name model_version",
        "batches redone request by request",
    ),
)

# Seldon Core v1: the executor (service orchestrator) in front of every SeldonDeployment.
_SELDON_V1 = (
    _m(
        "seldon_api_executor_server_requests_seconds",
        "histogram",
        "code deployment_name method predictor_name predictor_version service",
        "requests from the ingress to the executor, seconds",
    ),
    _m(
        "seldon_api_executor_client_requests_seconds",
        "histogram",
        "code deployment_name method predictor_name predictor_version service model_name "
        "model_image model_version",
        "requests from the executor to a model component, seconds",
    ),
)

# Seldon Core v2: the agent next to each inference server (scheduler/pkg/metrics/agent.go).
_SELDON_V2 = (
    _m(
        "seldon_model_infer_api_seconds",
        "histogram",
        "server server_replica method code",
        "inference latency at the agent, seconds",
    ),
    _m(
        "seldon_model_infer_total",
        "counter",
        "server server_replica model model_internal method_type code",
        "inferences",
    ),
    _m(
        "seldon_model_infer_seconds_total",
        "counter",
        "server server_replica model model_internal method_type code",
        "summed inference latency, seconds",
    ),
    _m(
        "seldon_model_aggregate_infer_total",
        "counter",
        "server server_replica method_type",
        "inferences over all models of a server",
    ),
    _m(
        "seldon_model_aggregate_infer_seconds_total",
        "counter",
        "server server_replica method_type",
        "summed latency over all models of a server",
    ),
    _m(
        "seldon_loaded_model_gauge",
        "gauge",
        "server server_replica model_internal",
        "models loaded",
    ),
    _m(
        "seldon_loaded_model_memory_bytes_gauge",
        "gauge",
        "server server_replica model_internal",
        "memory of loaded models",
    ),
)

METRICS: dict[Flavour, tuple[Metric, ...]] = {
    "mlserver": _MLSERVER,
    "mlops-kit": _MLOPS_KIT,
    "seldon-v1": _SELDON_V1,
    "seldon-v2": _SELDON_V2 + _MLSERVER,  # Seldon v2 serves models with MLServer underneath
}
"""Every metric the dashboard and the load test read, by metric set."""

_SUFFIXES = {"histogram": ("_bucket", "_sum", "_count"), "summary": ("_sum", "_count")}


def metric_names(flavours: Iterable[Flavour] = FLAVOURS) -> set[str]:
    """Every series name the metric sets expose, ``_bucket``/``_sum``/``_count`` included."""
    names: set[str] = set()
    for flavour in flavours:
        for metric in METRICS[flavour]:
            names.add(metric.name)
            names.update(metric.name + s for s in _SUFFIXES.get(metric.type, ()))
    return names

"""InvokeEndpoint as SageMaker answers it, and the CloudWatch metrics SageMaker publishes.

Installed into the moto server of the test process by :func:`tests.support.sagemaker_server.
install`, so the real boto3 ``sagemaker-runtime`` and ``cloudwatch`` clients reach it:

- **Routing**: a request goes to one of the endpoint's production variants, drawn at random
  by their ``CurrentWeight`` (a variant moto shows without one has its EndpointConfig's
  ``InitialVariantWeight``, 1.0 when unset, as SageMaker defaults it); ``TargetVariant``
  (``X-Amzn-SageMaker-Target-Variant``) picks the variant instead, whatever its weight.
  Weights summing to 0, or a ``TargetVariant`` the endpoint does not have, are refused with a
  ``ValidationError`` (400). The answer names the variant in
  ``x-Amzn-Invoked-Production-Variant``.
- **The variant's model answers**: the archive its Model's ``ModelDataUrl`` names is
  downloaded from moto's S3, unpacked and loaded once per URL; the body goes to the BYO
  container's ``/invocations`` app, in-process. What the container answers 4xx or 5xx, or a
  model that raises (the container's 500), reaches the caller as SageMaker's ``ModelError``
  (424) with ``OriginalStatusCode``.
- **CloudWatch**: each invocation that reached a variant puts, into moto's own CloudWatch
  backend in this process (namespace ``AWS/SageMaker``, dimensions ``EndpointName`` and
  ``VariantName``), what SageMaker publishes for it: ``Invocations`` (1),
  ``Invocation4XXErrors`` and ``Invocation5XXErrors`` (1 or 0, by the container's status)
  and ``ModelLatency`` (microseconds spent in the container).
- **Percentiles**: moto (5.2) computes only SampleCount, Sum, Average, Minimum and Maximum;
  ``GetMetricStatistics`` ignores ``ExtendedStatistics`` and a ``GetMetricData`` query whose
  ``Stat`` is a percentile fails with a 500. Statistics ``pNN`` (``p99``, ``p99.9``) are added
  to ``GetMetricData``: the nearest-rank percentile of the period's values (CloudWatch's own
  is an estimate of the same).

What stays emulated: no instances (a variant's model is loaded in this process), no
OverheadLatency or instance metrics, metrics visible at once rather than a minute late.
"""

from __future__ import annotations

import json
import math
import random
import re
import tempfile
import time
from pathlib import Path
from typing import Any

NAMESPACE = "AWS/SageMaker"
TARGET_VARIANT = "X-Amzn-SageMaker-Target-Variant"
INVOKED_VARIANT = "x-Amzn-Invoked-Production-Variant"

_PERCENTILE = re.compile(r"p(\d{1,2}(?:\.\d+)?)")
_predictors: dict[str, Any] = {}
_draw = random.Random()  # noqa: S311 - routing, not secrets


class _Refused(Exception):
    """SageMaker's ValidationError (400) for an invocation it cannot route."""


def install() -> None:
    """Serve InvokeEndpoint and percentile statistics from moto's classes (call once)."""
    from moto.cloudwatch.models import Statistics
    from moto.sagemakerruntime.responses import SageMakerRuntimeResponse

    runtime: Any = SageMakerRuntimeResponse
    runtime.invoke_endpoint = _respond_invoke_endpoint
    statistics: Any = Statistics
    plain = statistics.get_statistics_for_type

    def get_statistics_for_type(self: Any, stat: str) -> Any:
        match = _PERCENTILE.fullmatch(stat)
        if match is None:
            return plain(self, stat)
        return percentile(self.metric_single_values_list, float(match[1]))

    statistics.get_statistics_for_type = get_statistics_for_type


def reset() -> None:
    """Forget the loaded models (between tests)."""
    _predictors.clear()


def percentile(values: list[float], percent: float) -> float | None:
    """The nearest-rank ``percent`` percentile of ``values``; None without values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(percent / 100 * len(ordered))) - 1]


def _respond_invoke_endpoint(self: Any) -> Any:
    from moto.sagemaker.models import sagemaker_backends

    from tests.support.sagemaker_server import _settle

    name = self._get_params().get("EndpointName") or self.path.split("/")[2]
    backend = sagemaker_backends[self.current_account][self.region]
    _settle(backend, name)
    endpoint = backend.endpoints.get(name)
    if endpoint is None or endpoint.endpoint_status not in ("InService", "Updating"):
        message = f"Endpoint {name} of account {self.current_account} not found."
        if endpoint is not None:
            message = f"Endpoint {name} is {endpoint.endpoint_status}."
        return _refuse(message)
    config = backend.endpoint_configs[endpoint.endpoint_config_name]
    try:
        variant = _route(endpoint, config, _header(self.headers, TARGET_VARIANT))
    except _Refused as exc:
        return _refuse(str(exc))
    model = backend._models[variant["ModelName"]]
    began = time.perf_counter()
    try:
        predict = _predictor(model.primary_container["ModelDataUrl"])
        status, content_type, body = predict(
            self.body, _header(self.headers, "Content-Type"), _header(self.headers, "Accept")
        )
    except Exception as exc:  # the model raised: the container answers 500
        status, content_type, body = 500, "application/json", json.dumps({"error": str(exc)})
    micros = (time.perf_counter() - began) * 1e6
    _publish(self.current_account, self.region, name, variant["VariantName"], status, micros)
    headers = {INVOKED_VARIANT: variant["VariantName"]}
    if status >= 400:
        # SageMaker wraps what the container answered in a ModelError (424).
        text = body.decode() if isinstance(body, bytes) else body
        kind = "server" if status >= 500 else "client"
        error = {
            "message": f'Received {kind} error ({status}) from primary with message "{text}". '
            f"See /aws/sagemaker/Endpoints/{name} in account {self.current_account} "
            "for more information.",
            "OriginalStatusCode": status,
            "OriginalMessage": text,
        }
        return _answer(424, {**headers, "x-amzn-ErrorType": "ModelError"}, json.dumps(error))
    return _answer(200, {**headers, "Content-Type": content_type}, body)


def _answer(status: int, headers: dict[str, str], body: Any) -> tuple[int, dict[str, str], Any]:
    # moto's dispatcher takes the status from the headers; the tuple's own is ignored.
    return status, {**headers, "status": str(status)}, body


def _refuse(message: str) -> tuple[int, dict[str, str], Any]:
    return _answer(400, {"x-amzn-ErrorType": "ValidationError"}, json.dumps({"message": message}))


def _header(headers: Any, name: str) -> str | None:
    """A request header, whatever the case of its name."""
    wanted = name.lower()
    return next((v for k, v in headers.items() if k.lower() == wanted), None)


def _route(endpoint: Any, config: Any, target: str | None) -> dict[str, Any]:
    """The production variant (its config entry: name, ModelName) that serves a request."""
    configured = {v["VariantName"]: v for v in config.production_variants}
    if target is not None:
        if target not in configured:
            raise _Refused(
                f'The variant "{target}" is not present within endpoint configuration '
                f'"{endpoint.endpoint_config_name}" of endpoint "{endpoint.endpoint_name}".'
            )
        return configured[target]
    names, weights = [], []
    for live in endpoint.production_variants:
        name = live["VariantName"]
        weight = live.get("CurrentWeight")
        if weight is None:
            weight = configured[name].get("InitialVariantWeight", 1.0)
        names.append(name)
        weights.append(float(weight))
    if sum(weights) <= 0:
        raise _Refused(
            f'Endpoint "{endpoint.endpoint_name}" has no production variant with a weight '
            "above 0 to route the request to."
        )
    (chosen,) = _draw.choices(names, weights=weights)
    return configured[chosen]


def _publish(
    account: str, region: str, endpoint: str, variant: str, status: int, micros: float
) -> None:
    """Put one invocation's metrics into moto's CloudWatch, as SageMaker publishes them."""
    from moto.cloudwatch.models import cloudwatch_backends
    from moto.core.utils import utcnow

    at = utcnow()
    dimensions = [
        {"Name": "EndpointName", "Value": endpoint},
        {"Name": "VariantName", "Value": variant},
    ]

    def datum(metric: str, value: float, unit: str) -> dict[str, Any]:
        return {"MetricName": metric, "Value": float(value), "Unit": unit,
                "Dimensions": dimensions, "Timestamp": at}  # fmt: skip

    cloudwatch_backends[account][region].put_metric_data(
        NAMESPACE,
        [
            datum("Invocations", 1, "None"),
            datum("Invocation4XXErrors", 400 <= status < 500, "None"),
            datum("Invocation5XXErrors", status >= 500, "None"),
            datum("ModelLatency", micros, "Microseconds"),
        ],
    )


def _predictor(model_data_url: str) -> Any:
    """A ``(body, content_type, accept) -> (status, content_type, body)`` for an archive."""
    from tests.support.sagemaker_server import _lock, _s3, _split

    with _lock:
        if model_data_url in _predictors:
            return _predictors[model_data_url]
        folder = Path(tempfile.mkdtemp(prefix="sagemaker-model-"))
        bucket, key = _split(model_data_url)
        _s3().download_file(bucket, key, str(folder / "model.tar.gz"))
        from mlops_kit.targets.sagemaker.container import unpack_model

        model_dir = unpack_model(folder / "model.tar.gz", folder / "model")
        predictor = _byo_predictor(model_dir)
        _predictors[model_data_url] = predictor
        return predictor


def _byo_predictor(model_dir: Path) -> Any:
    """The BYO container's ``/invocations`` app, in-process."""
    from starlette.testclient import TestClient

    from mlops_kit.targets.sagemaker.byo import serve

    client = TestClient(serve.create_app(serve.Predictor.load(model_dir)))

    def predict(body: bytes, content_type: str | None, accept: str | None) -> tuple:
        headers = {"Content-Type": content_type or "application/json"}
        if accept:
            headers["Accept"] = accept
        answer = client.post("/invocations", content=body, headers=headers)
        return answer.status_code, answer.headers.get("content-type"), answer.content

    return predict

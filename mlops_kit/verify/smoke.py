"""Smoke tests: does a live endpoint answer like the registered model does locally?

``smoke_test`` sends the model's saved input example as one batch and row by row, and checks
each answer (HTTP 200, one prediction per row, the same predictions as the model computes
locally, the expected version). A SageMaker runtime URL (``…/endpoints/<name>/invocations``)
is called through boto3's signed ``InvokeEndpoint`` instead of plain HTTP.
``examples_from_model`` provides the examples and the local predictions from the MLflow model
itself.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import httpx
import numpy as np
import pandas as pd

from mlops_kit import display
from mlops_kit.errors import ParameterError, SmokeTestFailed, ToolkitError
from mlops_kit.targets.base import DeploymentStatus
from mlops_kit.targets.sagemaker.names import version_of_variant
from mlops_kit.verify.v2 import Protocol, protocol_for

__all__ = ["SmokeResult", "examples_from_model", "smoke_test"]

_SHOWN = 5  # mismatching rows quoted in a failure


@dataclass(frozen=True)
class SmokeResult(display.Rich):
    """What a smoke test saw; ``passed`` is True only when ``failures`` is empty."""

    endpoint: str
    """The URL that was tested: ``.../infer`` (V2) or ``.../api/v1.0/predictions`` (Seldon)."""
    passed: bool
    n_requests: int
    """Requests sent (a failed connection counts)."""
    latency_ms: list[float] = field(default_factory=list)
    """Round-trip time of each answered request, in milliseconds."""
    failures: list[str] = field(default_factory=list)
    """One line per problem, naming the request it came from."""
    served_version: str | None = None
    """The ``model_version`` the endpoint reported, when all answers agreed on one."""

    def latency_summary(self) -> dict[str, float]:
        """``min``, ``p50``, ``p95``, ``max`` and ``mean`` latency in ms (empty if none)."""
        if not self.latency_ms:
            return {}
        values = sorted(self.latency_ms)
        return {
            "min": values[0],
            "p50": float(np.percentile(values, 50)),
            "p95": float(np.percentile(values, 95)),
            "max": values[-1],
            "mean": statistics.fmean(values),
        }

    def to_dict(self) -> dict[str, Any]:
        """Plain data for reports, tags and commit trailers."""
        return {**asdict(self), "latency_summary": self.latency_summary()}

    def summary(self) -> str:
        """One line: verdict, requests, served version and latency (or the first failure)."""
        head = "passed" if self.passed else "FAILED"
        served = f", served v{self.served_version}" if self.served_version else ""
        lat = self.latency_summary()
        timing = f", p50 {lat['p50']:.1f} ms, max {lat['max']:.1f} ms" if lat else ""
        tail = f": {self.failures[0]}" if self.failures else ""
        more = f" (+{len(self.failures) - 1} more)" if len(self.failures) > 1 else ""
        return f"smoke test {head}: {self.n_requests} requests{served}{timing}{tail}{more}"

    def _repr_html_(self) -> str:
        lat = self.latency_summary()
        rows = {
            "endpoint": self.endpoint,
            "requests": self.n_requests,
            "served version": self.served_version,
            "latency, ms": ", ".join(f"{k} {v:.1f}" for k, v in lat.items()) or "no answer",
        }
        failures = "".join(f"<li>{display.esc(f)}</li>" for f in self.failures)
        return (
            display.verdict(self.passed, self.summary())
            + display.fields(rows)
            + (f"<ul>{failures}</ul>" if failures else "")
        )

    def _figure_(self) -> display.Figure:
        return display.Figure("smoke test", self.summary(), self.passed)


def smoke_test(
    endpoint: str | DeploymentStatus,
    model_name: str,
    examples: pd.DataFrame,
    expected: Sequence[Any] | np.ndarray,
    *,
    expected_version: str | None = None,
    timeout: float = 10.0,
    single_rows: int = 3,
    raise_on_failure: bool = True,
) -> SmokeResult:
    """Send ``examples`` to the endpoint and compare the answers with ``expected``.

    One request carries every example, then up to ``single_rows`` requests carry one row each.
    ``endpoint`` is a server root, a model endpoint (``.../v2/models/NAME``), a Seldon-protocol
    endpoint (``.../api/v1.0/predictions``, a custom server) or a :class:`DeploymentStatus`;
    the URL picks the protocol. ``expected`` holds the registered model's local predictions
    (see :func:`examples_from_model`). When the endpoint cannot be reached the test stops at
    the first request. Raises :class:`~mlops_kit.errors.SmokeTestFailed` listing every
    failure, unless ``raise_on_failure`` is False; ParameterError when ``examples`` is empty
    or ``expected`` does not hold one prediction per example.
    """
    if isinstance(endpoint, DeploymentStatus):
        if endpoint.endpoint is None:
            raise ToolkitError(f"{endpoint.environment}/{endpoint.model_name} has no endpoint")
        endpoint = endpoint.endpoint
    want = _flat(np.asarray(expected))
    if len(want) != len(examples):
        raise ParameterError(
            "expected", f"{len(examples)} examples but {len(want)} expected predictions"
        )
    if len(examples) == 0:
        raise ParameterError("examples", "a smoke test needs at least one example")
    protocol = SAGEMAKER if sagemaker_endpoint(endpoint) else protocol_for(endpoint)
    url = protocol.url(endpoint, model_name)
    requests = [(f"batch of {len(examples)} rows", examples, want)]
    requests += [
        (f"row {i}", examples.iloc[i : i + 1], want[i : i + 1])
        for i in range(min(single_rows, len(examples)))
    ]
    failures: list[str] = []
    latencies: list[float] = []
    versions: list[str | None] = []
    sent = 0
    with httpx.Client(timeout=timeout, trust_env=False) as client:
        post = _invoker(url, timeout) if protocol is SAGEMAKER else _poster(client)
        for label, frame, wanted in requests:
            sent += 1
            began = time.perf_counter()
            try:
                response = post(url, protocol.encode(frame))
            except httpx.ConnectError as exc:
                failures.append(f"{label}: cannot connect to {url} ({exc})")
                break
            except httpx.TimeoutException:
                failures.append(f"{label}: no answer from {url} within {timeout:g} s")
                break
            except httpx.HTTPError as exc:
                failures.append(f"{label}: request to {url} failed ({type(exc).__name__}: {exc})")
                break
            latencies.append((time.perf_counter() - began) * 1000.0)
            failure = _check_answer(response, protocol, model_name, wanted, versions)
            if failure:
                failures.append(f"{label}: {failure}")
    served = None
    distinct = sorted({v for v in versions if v is not None})
    if len(distinct) == 1:
        served = distinct[0]
    elif len(distinct) > 1:
        failures.append(f"answers came from several model versions: {distinct}")
    if expected_version is not None and versions and served != expected_version:
        failures.append(f"served version is {served!r}, expected {expected_version!r}")
    result = SmokeResult(
        endpoint=url,
        passed=not failures,
        n_requests=sent,
        latency_ms=latencies,
        failures=failures,
        served_version=served,
    )
    if failures and raise_on_failure:
        raise SmokeTestFailed(url, failures)
    return result


def _check_answer(
    response: httpx.Response,
    protocol: Protocol,
    model_name: str,
    wanted: np.ndarray,
    versions: list[str | None],
) -> str | None:
    if response.status_code != 200:
        return f"HTTP {response.status_code}: {protocol.error(response)}"
    try:
        body = response.json()
        got = _flat(protocol.decode(body))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        return f"unreadable answer ({exc}): {response.text[:200]!r}"
    versions.append(protocol.version(body))
    answered_by = protocol.model_name(body)
    if answered_by not in (None, model_name):
        return f"answered by model {answered_by!r}, not {model_name!r}"
    if len(got) != len(wanted):
        return f"{len(got)} predictions for {len(wanted)} rows"
    wrong = np.flatnonzero(~_same(got, wanted))
    if wrong.size:
        shown = ", ".join(
            f"row {i}: got {got[i]!r}, expected {wanted[i]!r}" for i in wrong[:_SHOWN]
        )
        more = f" and {wrong.size - _SHOWN} more" if wrong.size > _SHOWN else ""
        return f"{wrong.size} prediction(s) differ from the model's local ones ({shown}{more})"
    return None


# -- SageMaker endpoints: InvokeEndpoint through boto3, signed -----------------------------------

_SAGEMAKER_PATH = re.compile(r"/endpoints/(?P<name>[A-Za-z0-9-]{1,63})/invocations/?$")
_RUNTIME_HOST = re.compile(r"^runtime\.sagemaker\.(?P<region>[a-z0-9-]+)\.amazonaws\.com")
_VARIANT = "invoked_production_variant"


def sagemaker_endpoint(url: str) -> str | None:
    """The endpoint name of a SageMaker runtime URL (``…/endpoints/<name>/invocations``)."""
    found = _SAGEMAKER_PATH.search(urlparse(url).path)
    return found.group("name") if found else None


def _predictions(body: dict[str, Any]) -> np.ndarray:
    predictions = body["predictions"]
    if isinstance(predictions, dict):  # a model answering several named outputs
        raise ValueError(f"several outputs ({', '.join(predictions)}) where one was expected")
    return np.asarray(predictions)


SAGEMAKER = Protocol(
    name="sagemaker",
    url=lambda url, _name: url,
    encode=lambda frame: {
        "dataframe_split": json.loads(frame.to_json(orient="split", index=False))
    },
    decode=_predictions,
    version=lambda body: version_of_variant(body.get(_VARIANT)),
    model_name=lambda _body: None,
    error=lambda response: str(response.json().get("error", response.text))[:500],
)
"""A SageMaker endpoint serving the BYO container: MLflow's ``dataframe_split`` JSON in,
``{"predictions": [...]}`` out, the version read from the invoked variant (``v<version>``)."""


def _invoker(url: str, timeout: float) -> Callable[..., httpx.Response]:
    """``post(url, body)`` through ``sagemaker-runtime`` InvokeEndpoint, as an HTTP answer.

    Requests must be signed, so they go through boto3 to the URL's host; the answer's body
    gains the variant SageMaker names (``invoked_production_variant``). An AWS error is an
    answer with its status and message; an unreachable host raises httpx.ConnectError.
    """
    from mlops_kit.errors import MissingDependencyError

    try:
        import boto3
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:
        raise MissingDependencyError("boto3", "sagemaker") from None
    parsed = urlparse(url)
    base = f"{parsed.scheme}://{parsed.netloc}"
    region = _RUNTIME_HOST.match(parsed.netloc)
    session = boto3.session.Session()
    runtime = session.client(
        "sagemaker-runtime",
        endpoint_url=base,
        region_name=region.group("region") if region else session.region_name or "us-east-1",
        config=Config(connect_timeout=timeout, read_timeout=timeout, retries={"max_attempts": 1}),
    )
    name = sagemaker_endpoint(url)

    def post(_url: str, body: dict[str, Any]) -> httpx.Response:
        try:
            answer = runtime.invoke_endpoint(
                EndpointName=name,
                ContentType="application/json",
                Accept="application/json",
                Body=json.dumps(body),
            )
        except ClientError as exc:
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 500
            message = exc.response.get("Error", {}).get("Message") or str(exc)
            return httpx.Response(status, json={"error": message})
        except BotoCoreError as exc:
            raise httpx.ConnectError(str(exc)) from exc
        answered = json.loads(answer["Body"].read() or b"null")
        if not isinstance(answered, dict):
            answered = {"predictions": answered}
        variant = answer.get("InvokedProductionVariant")
        return httpx.Response(200, json={**answered, _VARIANT: variant})

    return post


def _poster(client: httpx.Client) -> Callable[[str, dict[str, Any]], httpx.Response]:
    return lambda url, body: client.post(url, json=body)


def _flat(values: np.ndarray) -> np.ndarray:
    if values.ndim == 2 and values.shape[1] == 1:
        return values[:, 0]
    return values


def _same(got: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Elementwise equality; floats within a relative 1e-6 (JSON round trips are exact)."""
    if got.ndim > 1 or wanted.ndim > 1:
        equal = [
            _same(np.atleast_1d(g), np.atleast_1d(w)).all() if np.shape(g) == np.shape(w) else False
            for g, w in zip(got, wanted, strict=True)
        ]
        return np.asarray(equal, dtype=bool)
    numeric = got.dtype.kind in "biuf" and wanted.dtype.kind in "biuf"
    if numeric and "f" in (got.dtype.kind, wanted.dtype.kind):
        return np.isclose(got.astype(float), wanted.astype(float), rtol=1e-6, atol=1e-9)
    if numeric:
        return got == wanted
    return np.asarray([str(g) == str(w) for g, w in zip(got, wanted, strict=True)], dtype=bool)


@contextlib.contextmanager
def trusted_models() -> Iterator[None]:
    """Let MLflow load the project's own scikit-learn models within the block."""
    # MLflow 3 refuses to deserialize scikit-learn models unless told the source is trusted;
    # these are the project's own registered models, the ones its servers load too.
    name = "MLFLOW_ALLOW_PICKLE_DESERIALIZATION"
    before = os.environ.get(name)
    os.environ[name] = "true"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


def examples_from_model(
    model_uri: str, cache: Path | None = None
) -> tuple[pd.DataFrame, np.ndarray]:
    """The MLflow model's saved input example and the model's own predictions for it.

    ``model_uri`` is a local path, a ``file://`` URI or any URI MLflow can download
    (``models:/name/1``, ``runs:/...``). Raises ToolkitError if the model has no example.
    With a ``cache`` directory, a local model's examples and predictions are kept there once
    computed, under a digest of its ``MLmodel`` file (which names the logged model's id): a
    promotion then verifies a candidate that passed staging without importing MLflow or loading
    the model (seconds on a command's critical path).
    """
    parsed = urlparse(model_uri)
    local = None
    if parsed.scheme == "file":
        local = unquote(parsed.path)
    elif not parsed.scheme or len(parsed.scheme) == 1:
        local = str(Path(model_uri).expanduser())
    kept = _cache_file(cache, local)
    found = _read_examples(kept) if kept is not None else None
    if found is not None:
        return found
    import mlflow.pyfunc
    from mlflow.exceptions import MlflowException
    from mlflow.models import Model

    try:
        with trusted_models():
            if local is not None:
                path = local
            else:
                import mlflow.artifacts

                path = mlflow.artifacts.download_artifacts(artifact_uri=model_uri)
            example = Model.load(path).load_input_example(path)
            if example is None:
                raise ToolkitError(
                    f"the model at {model_uri} has no saved input example; log it with "
                    "input_example=... to smoke-test it"
                )
            if not isinstance(example, pd.DataFrame):
                example = pd.DataFrame(example)
            predictions = mlflow.pyfunc.load_model(path).predict(example)
    except (MlflowException, OSError) as exc:
        raise ToolkitError(f"could not load the model at {model_uri}: {exc}") from exc
    expected = _flat(np.asarray(predictions))
    if kept is not None:
        _write_examples(kept, example, expected)
    return example, expected


# Kinds the cache keeps exactly in JSON: booleans, integers, floats (``repr`` round-trips).
_CACHED_KINDS = "biuf"


def _cache_file(cache: Path | None, local: str | None) -> Path | None:
    if cache is None or local is None:
        return None
    try:
        mlmodel = (Path(local) / "MLmodel").read_bytes()
    except OSError:
        return None
    digest = hashlib.sha256(mlmodel + b"\0" + str(Path(local).resolve()).encode()).hexdigest()
    return cache / f"{digest[:32]}.json"


def _read_examples(path: Path) -> tuple[pd.DataFrame, np.ndarray] | None:
    try:
        kept = json.loads(path.read_text())
        example = pd.DataFrame(
            {
                name: np.array(values, dtype=dtype)
                for name, dtype, values in zip(
                    kept["columns"], kept["dtypes"], kept["data"], strict=True
                )
            }
        )
        expected = np.array(kept["predictions"], dtype=kept["predictions_dtype"])
    except (OSError, ValueError, KeyError, TypeError):
        return None  # absent or unreadable: computed again, and written again
    return example, expected


def _write_examples(path: Path, example: pd.DataFrame, expected: np.ndarray) -> None:
    dtypes = [np.dtype(t) if isinstance(t, np.dtype) else None for t in example.dtypes]
    if expected.dtype.kind not in _CACHED_KINDS or any(
        t is None or t.kind not in _CACHED_KINDS for t in dtypes
    ):
        return  # strings, dates, objects: not kept exactly enough to be worth it
    from mlops_kit.process import write_json

    kept = {
        "columns": [str(c) for c in example.columns],
        "dtypes": [t.str for t in dtypes if t is not None],
        "data": [example[c].tolist() for c in example.columns],
        "predictions": expected.tolist(),
        "predictions_dtype": expected.dtype.str,
    }
    with contextlib.suppress(OSError):  # a cache that cannot be written is only slower
        write_json(path, kept)

"""The container's ``serve`` program: SageMaker runs it as ``docker run IMAGE serve``.

It loads the MLflow model SageMaker unpacked into ``model/`` (:mod:`~.contract`), then answers
on port 8080, as SageMaker's hosting contract asks:

- ``GET /ping``: 200 once the model is loaded (the server listens only after loading it);
- ``POST /invocations``: the body (JSON or CSV, :mod:`~.decode`) predicted, answered as
  ``{"predictions": [...]}`` (or CSV lines for ``Accept: text/csv``);
- ``GET /execution-parameters``: what a batch transform job may send at once.

A request that cannot be read or does not fit the model is answered 4xx with
``{"error": "<reason>"}``, never 5xx: 400 malformed, 406/415 unsupported type, 413 over
``$MLOPS_KIT_SERVE_MAX_BYTES`` (6 MiB, SageMaker's own payload limit), 422 not the model's
columns or types. The address comes from ``$MLOPS_KIT_SERVE_HOST`` (127.0.0.1 by default;
the image sets 0.0.0.0, which SageMaker needs) and ``$SAGEMAKER_BIND_TO_PORT`` (8080).

    MLOPS_KIT_SAGEMAKER_ROOT=/tmp/ml SAGEMAKER_BIND_TO_PORT=8089 \\
        python -m mlops_kit.targets.sagemaker.byo.serve
"""

from __future__ import annotations

import logging
import math
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_kit.errors import ConfigError
from mlops_kit.targets.sagemaker.byo.contract import (
    HOST_ENV,
    MAX_BYTES_ENV,
    PORT_ENV,
    Layout,
    find_model,
)
from mlops_kit.targets.sagemaker.byo.decode import CSV, JSON, RequestRefused, decode, media_type

if TYPE_CHECKING:
    import pandas as pd
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response

log = logging.getLogger("mlops_kit.sagemaker.serve")

_MAX_MESSAGE = 1000
_FLOATS = frozenset({"double", "float"})


@dataclass(frozen=True)
class ServeConfig:
    """Where the server listens and the largest body it reads."""

    host: str = "127.0.0.1"
    port: int = 8080
    max_bytes: int = 6 * 2**20

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ServeConfig:
        """The configuration the environment gives; ConfigError naming a bad variable."""
        environ = os.environ if environ is None else environ
        default = cls()
        return cls(
            host=environ.get(HOST_ENV) or default.host,
            port=_integer(environ, PORT_ENV, default.port, 1, 65535),
            max_bytes=_integer(environ, MAX_BYTES_ENV, default.max_bytes, 1, 2**31),
        )


def _integer(environ: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    text = environ.get(name)
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise ConfigError(f"${name} must be an integer from {low} to {high}, not {text!r}")
    return value


class Predictor:
    """A loaded MLflow model, the columns it takes and the checks made before predicting."""

    def __init__(self, model: Any) -> None:
        self.model = model
        schema = model.metadata.get_input_schema()
        named = schema is not None and schema.has_input_names()
        self.columns: list[str] = list(schema.input_names()) if named else []
        self._floats = {
            spec.name
            for spec in (schema.inputs if named else [])
            if getattr(spec.type, "name", None) in _FLOATS
        }

    @classmethod
    def load(cls, model_dir: Path) -> Predictor:
        """Load the model SageMaker unpacked into ``model_dir``."""
        import mlflow.pyfunc

        return cls(mlflow.pyfunc.load_model(str(find_model(model_dir))))

    def conform(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` with the model's columns in its order; RequestRefused (422) if it cannot."""
        if not self.columns:
            return frame
        names = [str(c) for c in frame.columns]
        missing = [c for c in self.columns if c not in names]
        unexpected = [c for c in names if c not in self.columns]
        if missing or unexpected:
            problems = [f"missing column(s) {missing}"] if missing else []
            problems += [f"unexpected column(s) {unexpected}"] if unexpected else []
            raise RequestRefused(
                f"{'; '.join(problems)}; the model takes {self.columns}", status=422
            )
        frame = frame[self.columns]
        for name in self._floats:
            # JSON writes 127.0 as 127: a whole number is still a value of a float column.
            if frame[name].dtype.kind in "iu":
                frame = frame.assign(**{name: frame[name].astype("float64")})
        return frame

    def predict(self, frame: pd.DataFrame) -> Any:
        """The model's predictions; RequestRefused (422) when the data does not fit it."""
        from mlflow.exceptions import MlflowException

        try:
            return self.model.predict(self.conform(frame))
        except (MlflowException, ValueError, TypeError, KeyError, OverflowError) as exc:
            message = " ".join(str(getattr(exc, "message", exc)).split())
            head, sep, reason = message.rpartition("'. Error: ")
            if sep and head.startswith("Failed to enforce schema"):
                message = reason  # without MLflow's echo of the request's data
            if len(message) > _MAX_MESSAGE:
                message = message[: _MAX_MESSAGE - 3] + "..."
            raise RequestRefused(f"the model cannot predict on this data: {message}", 422) from None


def listed(predictions: Any) -> list[Any]:
    """Predictions as JSON values: arrays as lists, tables as records, NaN as null."""
    if hasattr(predictions, "to_dict") and hasattr(predictions, "columns"):
        predictions = predictions.to_dict(orient="records")
    elif hasattr(predictions, "tolist"):
        predictions = predictions.tolist()
    return [_finite(value) for value in predictions]


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    return value


def _as_csv(predictions: list[Any]) -> str:
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for value in predictions:
        row = value.values() if isinstance(value, dict) else value
        writer.writerow(row if isinstance(value, list | dict) else [value])
    return out.getvalue()


def _accepted(accept: str | None) -> str:
    """The response type ``Accept`` asks for: JSON unless it prefers CSV."""
    for part in (accept or "").split(","):
        kind = media_type(part)
        if kind in (JSON, CSV):
            return kind
        if kind in ("*/*", "application/*", "text/*", ""):
            return CSV if kind == "text/*" else JSON
    raise RequestRefused(f"cannot answer in {accept!r}; accept {JSON} or {CSV}", 406)


async def _body(request: Request, limit: int) -> bytes:
    """The request body, refusing (413) one over ``limit`` bytes before reading it all."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise RequestRefused(f"the body is larger than {limit} bytes", 413)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestRefused(f"the body is larger than {limit} bytes", 413)
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(predictor: Predictor, max_bytes: int = ServeConfig.max_bytes) -> Starlette:
    """The HTTP application serving ``predictor``."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException
    from starlette.responses import JSONResponse, PlainTextResponse
    from starlette.routing import Route

    def refused(status: int, reason: str) -> Response:
        return JSONResponse({"error": reason}, status_code=status)

    async def ping(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def execution_parameters(request: Request) -> Response:
        megabytes = max(1, max_bytes // 2**20)
        return JSONResponse(
            {
                "MaxConcurrentTransforms": 1,
                "BatchStrategy": "MULTI_RECORD",
                "MaxPayloadInMB": megabytes,
            }  # fmt: skip
        )

    async def invocations(request: Request) -> Response:
        try:
            answer = _accepted(request.headers.get("accept"))
            body = await _body(request, max_bytes)
            frame = decode(body, request.headers.get("content-type"), predictor.columns)
            predictions = listed(await run_in_threadpool(predictor.predict, frame))
        except RequestRefused as exc:
            return refused(exc.status, exc.reason)
        if answer == CSV:
            return PlainTextResponse(_as_csv(predictions), media_type=CSV)
        return JSONResponse({"predictions": predictions})

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return refused(exc.status_code, str(exc.detail))

    async def server_error(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error answering %s %s", request.method, request.url.path)
        return JSONResponse({"error": f"internal error: {type(exc).__name__}"}, status_code=500)

    return Starlette(
        routes=[
            Route("/ping", ping, methods=["GET"]),
            Route("/invocations", invocations, methods=["POST"]),
            Route("/execution-parameters", execution_parameters, methods=["GET"]),
        ],
        exception_handlers={HTTPException: http_error, Exception: server_error},
    )


def main() -> int:
    """Load the model, then serve it until stopped; 2 for a bad variable, 1 for a bad model."""
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    layout = Layout.from_env()
    try:
        config = ServeConfig.from_env()
    except ConfigError as exc:
        log.error("%s", exc)
        return exc.exit_code
    try:
        predictor = Predictor.load(layout.model_dir)
    except Exception as exc:
        log.error("cannot load the model in %s: %s", layout.model_dir, exc)
        return 1
    log.info("loaded the model in %s; columns %s", layout.model_dir, predictor.columns)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(predictor, config.max_bytes),
            host=config.host,
            port=config.port,
            access_log=False,
            server_header=False,
            timeout_graceful_shutdown=10,
        )
    )
    server.run()
    return 0 if server.started else 1


if __name__ == "__main__":
    sys.exit(main())

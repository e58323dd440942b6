"""An MLServer runtime for MLflow models that answers bad requests with 422 JSON, not 500.

Stock ``mlserver_mlflow.MLflowRuntime`` lets schema violations (a wrong column, a wrong shape)
escape as exceptions, which MLServer turns into HTTP 500 with a traceback in the log. This
runtime checks each request before predicting: the V2 rules every request must keep (values of
their datatype and in range, shapes, content types, parameters, the request id:
:mod:`mlops_kit.serving.payload`), then the model's signature, using checks precomputed at load
time; it turns what still fails in decoding or in MLflow's own schema enforcement into
:class:`InvalidRequest` (HTTP 422, body ``{"error": "..."}``). It also
loads the model when MLServer creates it, so a new version that fails to load never displaces
the version being served.

Concurrent valid requests are micro-batched (:mod:`mlops_kit.serving.batching`): validated and
decoded one by one, then predicted together in a worker thread, each answered with its own
rows, exactly as it would be alone. ``parameters.extra`` of the model settings configures it:
``max_batch_size`` (rows; 1 turns batching off) and ``max_batch_time`` (seconds). MLServer's
own adaptive batching must stay off: it fails every request of a batch when one is bad.

Model settings select it with ``"implementation": "mlops_kit.serving.runtime.MLflowRuntime"``.

What was measured (2 cores shared with wrk, 100-tree random forest on wine, one-row requests,
50 connections; other jobs on the machine move the figures by up to 2x):

- Unbatched: about 135 req/s, p50 270-320 ms, p99 over 6 s. One ``predict`` costs 5.2 ms for
  1 row and 5.2 ms for 64 (the per-tree overhead dominates), so batching is the lever.
- MLServer's pandas codec costs 0.6 ms a request (13 ``Series`` and a ``DataFrame``), half the
  event loop's time once batching; ``pd.concat`` of one-row frames is slow too (it compares
  Arrow-string column indexes). :func:`decode_columns` decodes numeric columns to arrays
  (0.07 ms) and a batch makes one DataFrame: 600 -> 1100-1400 req/s.
- A full garbage collection walks ~440k objects (MLflow, pandas, the model) in 250 ms and
  stalls every request in flight: p99 about 400 ms. ``gc.freeze()`` after loading: p99 55-100
  ms at 1100-1400 req/s, p50 35-45 ms, on a quiet machine.
- ``predict`` on the event loop instead of one worker thread: p99 260-400 ms (the loop stops
  reading requests while a batch predicts).
- ``max_batch_time`` 0 (batch only what queued while the last batch ran) gave smaller batches
  and a worse, unsteady p99; 5 or 10 ms were no better than 2 ms. Batches settle at about 25
  requests, two alternating: one predicts while the loop reads and answers the other.
- What is left is MLServer's own HTTP path (uvicorn's pure-Python h11 parser, FastAPI,
  pydantic, Prometheus middleware: about 0.6 ms a request); with ``httptools`` installed
  uvicorn uses it instead, worth +60% req/s measured here.
"""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import mlflow.pyfunc
import mlserver_mlflow
import numpy as np
from mlflow.exceptions import MlflowException
from mlflow.types.schema import ColSpec, DataType, Schema, TensorSpec
from mlserver.codecs import NumpyCodec, PandasCodec
from mlserver.errors import InvalidModelURI, MLServerError
from mlserver.logging import logger
from mlserver.settings import ModelSettings
from mlserver.types import InferenceRequest, InferenceResponse, MetadataTensor, RequestInput
from mlserver.utils import to_absolute_path
from mlserver_mlflow.codecs import TensorDictCodec

from mlops_kit.serving import metrics
from mlops_kit.serving.batching import (
    DEFAULT_MAX_BATCH_SIZE,
    DEFAULT_MAX_BATCH_TIME,
    Batcher,
    Columns,
    model_input,
)
from mlops_kit.serving.payload import request_problems

__all__ = [
    "InvalidRequest",
    "MLflowRuntime",
    "RequestValidator",
    "decode_columns",
]


_INTS = frozenset({"INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"})
_FLOATS = frozenset({"FP16", "FP32", "FP64"})
_NUMBERS = _INTS | _FLOATS
_BYTES = frozenset({"BYTES"})

# Which V2 datatypes can carry each MLflow column type. MLflow's own enforcement still decides
# the finer cases (an INT64 column for a double is refused as unsafe, and says so).
_COLUMN_DATATYPES: dict[DataType, frozenset[str]] = {
    DataType.boolean: frozenset({"BOOL"}),
    DataType.integer: _INTS,
    DataType.long: _INTS,
    DataType.float: _NUMBERS,
    DataType.double: _NUMBERS,
    DataType.string: _BYTES,
    DataType.binary: _BYTES,
    DataType.datetime: _BYTES,
}

_KIND_DATATYPES = {
    "b": frozenset({"BOOL"}),
    "i": _INTS,
    "u": _INTS,
    "f": _NUMBERS,
    "U": _BYTES,
    "S": _BYTES,
    "O": _BYTES,
}

_MAX_MESSAGE = 2000

# What a codec raises for data it cannot decode. The checks of ``payload`` come first, so these
# are the rare cases they let through (a malformed date or base64 string, a ragged array).
_DECODE_ERRORS = (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError)


class InvalidRequest(MLServerError):
    """The request does not fit the model: answered with HTTP 422 and the reason."""

    def __init__(self, msg: str) -> None:
        if len(msg) > _MAX_MESSAGE:
            msg = msg[: _MAX_MESSAGE - 3] + "..."
        super().__init__(msg, status_code=422)


@dataclass(frozen=True)
class _InputRule:
    name: str
    type_name: str
    datatypes: frozenset[str] | None  # None: any datatype (complex MLflow types)
    shape: tuple[int, ...] | None  # None: a column, shape [n] or [n, 1]


def _rows_summary(rows: dict[str, int]) -> str:
    """``2 rows: alcohol; 3 rows: ash, hue and 10 more``."""
    by_count: dict[int, list[str]] = {}
    for name, count in rows.items():
        by_count.setdefault(count, []).append(name)
    parts = []
    for count, names in sorted(by_count.items(), key=lambda item: len(item[1])):
        shown = ", ".join(repr(n) for n in names[:3])
        more = f" and {len(names) - 3} more" if len(names) > 3 else ""
        parts.append(f"{count} rows: {shown}{more}")
    return "; ".join(parts)


class RequestValidator:
    """Checks V2 inference requests against an MLflow signature's inputs.

    Built once per model load; :meth:`problems` costs a few dictionary look-ups per input. It
    checks names, datatypes and shapes; whether the data fills the shape with values of the
    datatype is :func:`mlops_kit.serving.payload.request_problems`'s part.
    """

    def __init__(
        self,
        rules: list[_InputRule],
        *,
        named: bool,
        required: frozenset[str],
        model_name: str = "model",
    ) -> None:
        self._rules = {rule.name: rule for rule in rules}
        self._order = [rule.name for rule in rules]
        self._named = named
        self._required = required
        self._model_name = model_name

    @classmethod
    def from_schema(
        cls, schema: Schema | None, model_name: str = "model"
    ) -> RequestValidator | None:
        """A validator for ``schema``, or None when there is no schema to check against."""
        if schema is None or not schema.inputs:
            return None
        rules: list[_InputRule] = []
        required: set[str] = set()
        for index, spec in enumerate(schema.inputs):
            name = spec.name if spec.name is not None else f"input-{index}"
            if isinstance(spec, TensorSpec):
                kinds = _KIND_DATATYPES.get(spec.type.kind)
                rule = _InputRule(name, str(spec.type), kinds, tuple(spec.shape))
            elif isinstance(spec, ColSpec):
                datatypes = (
                    _COLUMN_DATATYPES.get(spec.type) if isinstance(spec.type, DataType) else None
                )
                type_name = spec.type.name if isinstance(spec.type, DataType) else str(spec.type)
                rule = _InputRule(name, type_name, datatypes, None)
            else:  # pragma: no cover - MLflow has no other input spec today
                return None
            rules.append(rule)
            if spec.required:
                required.add(name)
        return cls(
            rules,
            named=bool(schema.has_input_names()),
            required=frozenset(required),
            model_name=model_name,
        )

    def problems(self, request: InferenceRequest) -> list[str]:
        """Every way ``request`` violates the schema; empty when it fits."""
        found: list[str] = []
        inputs = request.inputs
        if not self._named:
            if len(inputs) != len(self._order):
                found.append(
                    f"the model takes {len(self._order)} input(s), the request has {len(inputs)}"
                )
                return found
            pairs = [
                (self._rules[name], inp) for name, inp in zip(self._order, inputs, strict=True)
            ]
        else:
            pairs = []
            seen: set[str] = set()
            unexpected: list[str] = []
            for inp in inputs:
                rule = self._rules.get(inp.name)
                if rule is None:
                    unexpected.append(inp.name)
                    continue
                if inp.name in seen:
                    found.append(f"input {inp.name!r} is given more than once")
                seen.add(inp.name)
                pairs.append((rule, inp))
            missing = [name for name in self._order if name in self._required and name not in seen]
            if missing:
                found.append(f"missing input(s) {missing}")
            if unexpected:
                found.append(f"unexpected input(s) {unexpected}")
            if missing or unexpected:
                found.append(f"the model takes {self._order}")
        rows: dict[str, int] = {}
        for rule, inp in pairs:
            self._check_input(rule, inp, found, rows)
        if len(set(rows.values())) > 1:
            found.append(f"inputs have different numbers of rows ({_rows_summary(rows)})")
        return found

    @staticmethod
    def _check_input(
        rule: _InputRule, inp: RequestInput, found: list[str], rows: dict[str, int]
    ) -> None:
        # MLServer's models store enum values as plain strings.
        datatype = inp.datatype if isinstance(inp.datatype, str) else inp.datatype.value
        if rule.datatypes is not None and datatype not in rule.datatypes:
            found.append(
                f"input {inp.name!r} has datatype {datatype}, which cannot hold the model's "
                f"{rule.type_name} (use one of {sorted(rule.datatypes)})"
            )
        shape = inp.shape
        if any(dim < 0 for dim in shape):
            found.append(f"input {inp.name!r} has a negative dimension in shape {shape}")
            return
        if rule.shape is None:
            if not 1 <= len(shape) <= 2 or math.prod(shape[1:]) != 1:
                found.append(
                    f"input {inp.name!r} has shape {shape}; a column must have shape [n] or [n, 1]"
                )
                return
        elif len(shape) != len(rule.shape) or any(
            want not in (-1, got) for want, got in zip(rule.shape, shape, strict=True)
        ):
            want_shape = [d if d != -1 else "n" for d in rule.shape]
            found.append(f"input {inp.name!r} has shape {shape}; the model expects {want_shape}")
            return
        if shape:
            rows[inp.name] = shape[0]

    def check(self, request: InferenceRequest) -> None:
        """Raise :class:`InvalidRequest` naming every problem if ``request`` does not fit."""
        found = self.problems(request)
        if found:
            raise InvalidRequest(
                f"request does not match the input schema of model {self._model_name!r}: "
                + "; ".join(found)
            )


def _mlflow_message(exc: MlflowException) -> str:
    """MLflow's schema error without its echo of the request's data."""
    message = str(exc.message)
    head, sep, tail = message.rpartition("'. Error: ")
    if sep and head.startswith("Failed to enforce schema"):
        return tail
    return message


def decode_columns(
    payload: InferenceRequest,
    content_type: str | None = None,
    inputs: Mapping[str, MetadataTensor] | None = None,
) -> Columns | None:
    """The numeric columns of a pandas request, decoded as MLServer does, minus the DataFrame.

    MLServer decodes each such input with ``NumpyCodec`` and makes a DataFrame of the
    flattened arrays; this does the first step only (``Columns.frame`` does the second, once
    for a whole batch). ``content_type`` is the model's default request content type and
    ``inputs`` its input metadata by name, which give inputs their codec. None for anything
    else (text, JSON or tensor inputs), which MLServer's decoder then handles; raises what
    ``NumpyCodec`` raises for data it cannot decode.
    """
    if payload.parameters is not None and payload.parameters.content_type is not None:
        content_type = payload.parameters.content_type
    if content_type != PandasCodec.ContentType or not payload.inputs:
        return None
    inputs = inputs or {}
    arrays: dict[str, np.ndarray] = {}
    for inp in payload.inputs:
        input_type = inp.parameters.content_type if inp.parameters else None
        if input_type is None:
            meta = inputs.get(inp.name)
            input_type = meta.parameters.content_type if meta and meta.parameters else None
        if (
            input_type != NumpyCodec.ContentType
            or inp.datatype in _BYTES
            or inp.name in arrays
            or len(inp.shape) not in (1, 2)
            or math.prod(inp.shape[1:]) != 1
        ):
            return None
        arrays[inp.name] = NumpyCodec.decode_input(inp).reshape(inp.shape[0])
    return Columns(arrays)


def _batcher_for(settings: ModelSettings, predict: Any, name: str) -> Batcher | None:
    """A batcher as ``parameters.extra`` configures it; None when ``max_batch_size`` <= 1."""
    extra = (settings.parameters.extra if settings.parameters else None) or {}
    try:
        size = int(extra.get("max_batch_size", DEFAULT_MAX_BATCH_SIZE))
        wait = float(extra.get("max_batch_time", DEFAULT_MAX_BATCH_TIME))
    except (TypeError, ValueError) as exc:
        raise MLServerError(
            f"model {name!r}: max_batch_size and max_batch_time in parameters.extra must be "
            f"numbers: {exc}",
            status_code=500,
        ) from None
    if size <= 1:
        return None
    version = settings.parameters.version if settings.parameters else None
    batch_sizes = metrics.BATCH_REQUESTS.labels(model_name=name, model_version=version or "")
    batch_fallbacks = metrics.BATCH_FALLBACKS.labels(model_name=name, model_version=version or "")

    def call(data: Any, params: dict[str, Any] | None) -> Any:
        return predict(data, params=params)

    def on_batch(requests: int, rows: int, fell_back: bool) -> None:
        batch_sizes.observe(requests)
        if fell_back:
            batch_fallbacks.inc()

    return Batcher(call, max_batch_size=size, max_batch_time=wait, name=name, on_batch=on_batch)


class MLflowRuntime(mlserver_mlflow.MLflowRuntime):
    """``mlserver_mlflow.MLflowRuntime`` that validates requests and never answers 500 for them.

    Schema violations, undecodable data and MLflow schema-enforcement errors get HTTP 422
    with a message naming the problem; an unexpected failure inside the model gets HTTP 500
    with its exception type only (the traceback goes to the server log). The server keeps
    serving either way. Valid concurrent requests are batched (see the module doc); a bad
    one is answered before it could join a batch, and a batch that fails is redone request
    by request, so one client's error is never another's.
    """

    _validator: RequestValidator | None = None
    _params: frozenset[str] = frozenset()
    _batcher: Batcher | None = None

    def __init__(self, settings: ModelSettings) -> None:
        super().__init__(settings)
        # Load here rather than in ``load()``: MLServer registers a new version as the default
        # before calling ``load()``, so a version that then failed to load would answer "not
        # ready" for a moment. Failing in the constructor keeps the old version answering.
        self._load_model()

    def _load_model(self) -> None:
        params = self._settings.parameters
        if params is None or not params.uri:
            raise InvalidModelURI(self.name)
        parsed = urlparse(params.uri, scheme="file")
        uri = (
            to_absolute_path(self._settings, parsed.path) if parsed.scheme == "file" else params.uri
        )
        try:
            self._model = mlflow.pyfunc.load_model(uri)
        except Exception as exc:
            logger.exception(
                "could not load model %s version %s from %s", self.name, self.version, uri
            )
            message = f"could not load model {self.name!r} version {self.version} from {uri}: {exc}"
            raise MLServerError(message[:_MAX_MESSAGE], status_code=500) from exc
        self._input_schema = self._model.metadata.get_input_schema()
        self._signature = self._model.metadata.signature
        self._sync_metadata()
        self._validator = RequestValidator.from_schema(self._input_schema, self.name)
        params = self._signature.params if self._signature is not None else None
        self._params = frozenset(spec.name for spec in params.params) if params else frozenset()
        self._batcher = _batcher_for(self._settings, self._model.predict, self.name)
        # Nearly every object alive now lives as long as the server. A full collection would
        # walk them all (about 250 ms with MLflow, pandas and a model loaded) and stall every
        # request in flight; frozen, collections skip them. An unloaded version is still freed
        # by reference counting; only garbage cycles in it would stay (none in sklearn models).
        gc.collect()
        gc.freeze()

    async def load(self) -> bool:
        """The model was loaded when this object was made; nothing is left to do."""
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        """Answer ``payload``, counted per version (:func:`~mlops_kit.serving.metrics.observe`)."""
        began = time.perf_counter()
        outcome = "error"
        try:
            response = await self._predict(payload)
            outcome = "ok"
            return response
        except MLServerError as exc:
            outcome = "invalid" if exc.status_code < 500 else "error"
            raise
        finally:
            metrics.observe(self.name, self.version or "", outcome, time.perf_counter() - began)

    async def _predict(self, payload: InferenceRequest) -> InferenceResponse:
        problems = request_problems(payload, self._params)
        if problems:
            raise InvalidRequest(
                f"invalid inference request for model {self.name!r}: " + "; ".join(problems)
            )
        if self._validator is not None:
            self._validator.check(payload)
        decoded = self._decode(payload)
        params = None
        if payload.parameters and payload.parameters.model_extra:
            params = payload.parameters.model_extra
        try:
            if self._batcher is not None and not self._batcher.closed:
                output = await self._batcher.submit(decoded, params)
            else:
                output = self._model.predict(model_input(decoded), params=params)
        except Exception as exc:
            raise self._predict_error(exc) from None
        return self.encode_response(output, default_codec=TensorDictCodec)

    async def unload(self) -> bool:
        """Finish every request already queued for a batch, then stop batching.

        MLServer unloads the old version after the new one answers; requests that reach this
        object after that are predicted one by one, so none is lost.
        """
        if self._batcher is not None:
            await self._batcher.close()
        return True

    def _predict_error(self, exc: Exception) -> MLServerError:
        """What the client hears about a failed ``predict``."""
        if isinstance(exc, MlflowException):
            return InvalidRequest(
                f"request does not match the input schema of model {self.name!r}: "
                + _mlflow_message(exc)
            )
        if isinstance(exc, ValueError | TypeError):
            return InvalidRequest(f"model {self.name!r} rejected the input: {exc}")
        logger.error("model %s failed to predict", self.name, exc_info=exc)
        return MLServerError(
            f"model {self.name!r} failed to predict ({type(exc).__name__}); see the server log",
            status_code=500,
        )

    def _decode(self, payload: InferenceRequest) -> Any:
        """The model input of ``payload``: :class:`Columns` when they are exact, else MLServer's."""
        default = self._settings.parameters.content_type if self._settings.parameters else None
        try:
            columns = decode_columns(payload, default, self._inputs_index)
        except _DECODE_ERRORS:
            columns = None  # MLServer's decoder below fails the same way and says where
        if columns is not None:
            return columns
        try:
            return self.decode_request(payload)
        except _DECODE_ERRORS as exc:
            raise InvalidRequest(self._decode_problem(payload, exc)) from None

    def _decode_problem(self, payload: InferenceRequest, exc: Exception) -> str:
        # Only on the error path: decode input by input to name the culprit.
        for inp in payload.inputs:
            try:
                self.decode(inp.model_copy())
            except _DECODE_ERRORS as input_exc:
                datatype = getattr(inp.datatype, "value", inp.datatype)
                return f"input {inp.name!r} could not be decoded as {datatype}: {input_exc}"
        return f"the request could not be decoded: {exc}"

"""Open Inference Protocol (V2) helpers: encode a DataFrame, decode predictions, call ``infer``.

Requests follow MLServer's pandas codec: one input per column, shape ``[n, 1]``, the request
marked ``"content_type": "pd"``. Plain JSON only (MLServer has no binary tensor extension).

Custom-flavour servers (seldon-core's wrapper) speak the Seldon protocol instead;
:func:`protocol_for` picks the :class:`Protocol` from an endpoint URL, so clients such as the
smoke test serve both.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
import pandas as pd

from mlops_kit.errors import InferenceFailed, OutputNotFound
from mlops_kit.serving import seldon

__all__ = [
    "InferenceFailed",  # defined in mlops_kit.errors; tests/targets import it from here
    "Protocol",
    "SELDON",
    "V2",
    "datatype_of",
    "decode_outputs",
    "encode_dataframe",
    "error_message",
    "infer",
    "infer_response",
    "infer_url",
    "protocol_for",
]

_NUMPY_DTYPES = {
    "BOOL": "bool",
    "UINT8": "uint8",
    "UINT16": "uint16",
    "UINT32": "uint32",
    "UINT64": "uint64",
    "INT8": "int8",
    "INT16": "int16",
    "INT32": "int32",
    "INT64": "int64",
    "FP16": "float16",
    "FP32": "float32",
    "FP64": "float64",
    "BYTES": "object",
}


def datatype_of(dtype: Any) -> str:
    """The V2 datatype for a numpy/pandas dtype; anything non-numeric travels as ``BYTES``."""
    dtype = np.dtype(dtype) if not isinstance(dtype, pd.api.extensions.ExtensionDtype) else dtype
    kind = getattr(dtype, "kind", "O")
    size = getattr(dtype, "itemsize", 8)
    if kind == "b":
        return "BOOL"
    if kind == "f":
        return {2: "FP16", 4: "FP32"}.get(size, "FP64")
    if kind in "iu":
        return f"{'U' if kind == 'u' else ''}INT{8 * size}"
    return "BYTES"


def encode_dataframe(df: pd.DataFrame) -> dict[str, Any]:
    """A V2 inference request body for ``df``: one ``[n, 1]`` input per column.

    Missing values are sent as ``null``; datetimes as ISO strings; text and any other
    non-numeric column as ``BYTES`` with a ``str`` content type.
    """
    rows = len(df)
    inputs = []
    for name in df.columns:
        column = df[name]
        entry: dict[str, Any] = {"name": str(name), "shape": [rows, 1]}
        if pd.api.types.is_datetime64_any_dtype(column.dtype):
            entry["datatype"] = "BYTES"
            entry["data"] = [None if pd.isna(v) else v.isoformat() for v in column]
            entry["parameters"] = {"content_type": "datetime"}
        else:
            datatype = datatype_of(column.dtype)
            entry["datatype"] = datatype
            if datatype == "BYTES":
                entry["data"] = [None if _missing(v) else str(v) for v in column]
                entry["parameters"] = {"content_type": "str"}
            else:
                data = column.to_numpy().tolist()
                if datatype.startswith("FP") and column.isna().any():
                    data = [None if math.isnan(v) else v for v in data]
                entry["data"] = data
        inputs.append(entry)
    return {"parameters": {"content_type": "pd"}, "inputs": inputs}


def _missing(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # lists and other containers
        return False


def decode_outputs(response: dict[str, Any], output: str | None = None) -> np.ndarray:
    """The predictions in a V2 response: the output called ``output``, else the first one.

    A column-shaped output (``[n, 1]``) comes back flat, one prediction per row. Raises
    :class:`~mlops_kit.errors.OutputNotFound` when the output is missing.
    """
    outputs = response.get("outputs")
    if not outputs:
        raise OutputNotFound(output, [])
    if output is None:
        chosen = outputs[0]
    else:
        matches = [o for o in outputs if o.get("name") == output]
        if not matches:
            raise OutputNotFound(output, [o.get("name") for o in outputs])
        chosen = matches[0]
    dtype = _NUMPY_DTYPES.get(chosen.get("datatype", ""), "object")
    values = np.asarray(chosen["data"], dtype=dtype)
    shape = chosen.get("shape")
    if shape and math.prod(shape) == values.size:
        values = values.reshape(shape)
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    return values


def infer_url(url: str, model_name: str) -> str:
    """The ``.../infer`` URL from a server root (``http://host:port``) or a model endpoint."""
    url = url.rstrip("/")
    if url.endswith("/infer"):
        return url
    if "/v2/models/" in url:
        return f"{url}/infer"
    return f"{url}/v2/models/{model_name}/infer"


def infer_response(
    client_or_url: httpx.Client | str,
    model_name: str,
    df: pd.DataFrame,
    timeout: float = 10.0,
) -> dict[str, Any]:
    """POST ``df`` to the model and return the whole response body.

    ``client_or_url`` is an ``httpx.Client`` with a ``base_url`` of the server, a server root
    URL or a model endpoint. Raises :class:`InferenceFailed` on no answer or a non-200 one.
    """
    body = encode_dataframe(df)
    if isinstance(client_or_url, httpx.Client):
        url = f"/v2/models/{model_name}/infer"
        shown = str(client_or_url.base_url).rstrip("/") + url
        try:
            response = client_or_url.post(url, json=body, timeout=timeout)
        except httpx.HTTPError as exc:
            raise InferenceFailed(shown, f"{type(exc).__name__}: {exc}") from exc
    else:
        shown = infer_url(client_or_url, model_name)
        try:
            with httpx.Client(trust_env=False) as client:
                response = client.post(shown, json=body, timeout=timeout)
        except httpx.HTTPError as exc:
            raise InferenceFailed(shown, f"{type(exc).__name__}: {exc}") from exc
    if response.status_code != 200:
        raise InferenceFailed(
            shown, f"HTTP {response.status_code}: {error_message(response)}", response.status_code
        )
    try:
        result: dict[str, Any] = response.json()
    except ValueError as exc:
        raise InferenceFailed(shown, f"the answer is not JSON: {response.text[:200]!r}") from exc
    return result


def infer(
    client_or_url: httpx.Client | str,
    model_name: str,
    df: pd.DataFrame,
    timeout: float = 10.0,
) -> np.ndarray:
    """Predictions for the rows of ``df`` from a V2 endpoint (see :func:`infer_response`)."""
    return decode_outputs(infer_response(client_or_url, model_name, df, timeout))


def error_message(response: httpx.Response) -> str:
    """The error text of a V2 error answer: MLServer's ``error`` or FastAPI's ``detail``."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:500]
    if isinstance(body, dict):
        if "error" in body:
            return str(body["error"])
        if "detail" in body:
            return str(body["detail"])[:500]
    return str(body)[:500]


@dataclass(frozen=True)
class Protocol:
    """How to talk to one kind of inference endpoint: URL, request body, answer."""

    name: str
    url: Callable[[str, str], str]
    """``(endpoint, model_name)`` to the URL predictions are POSTed to."""
    encode: Callable[[pd.DataFrame], dict[str, Any]]
    """A request body for the rows of a DataFrame."""
    decode: Callable[[dict[str, Any]], np.ndarray]
    """The predictions in an answer, one per row."""
    version: Callable[[dict[str, Any]], str | None]
    """The model version an answer reports, if any."""
    model_name: Callable[[dict[str, Any]], str | None]
    """The model name an answer reports, if any."""
    error: Callable[[httpx.Response], str]
    """The error text of an error answer."""


def _seldon_error(response: httpx.Response) -> str:
    try:
        return seldon.error_message(response.json())
    except ValueError:
        return response.text[:500]


V2 = Protocol(
    name="v2",
    url=infer_url,
    encode=encode_dataframe,
    decode=decode_outputs,
    version=lambda body: body.get("model_version"),
    model_name=lambda body: body.get("model_name"),
    error=error_message,
)
"""Open Inference Protocol (MLServer, Seldon Core v2, KServe)."""

SELDON = Protocol(
    name="seldon",
    url=lambda url, _name: url.rstrip("/"),
    encode=seldon.encode_dataframe,
    decode=seldon.decode_predictions,
    version=seldon.served_version,
    model_name=lambda _body: None,
    error=_seldon_error,
)
"""The Seldon protocol of seldon-core's Python wrapper (``/api/v1.0/predictions``)."""


def protocol_for(url: str) -> Protocol:
    """:data:`SELDON` for a ``.../api/v1.0/predictions`` endpoint, else :data:`V2`."""
    return SELDON if seldon.is_seldon_url(url) else V2

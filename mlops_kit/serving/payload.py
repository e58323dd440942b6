"""Strict checks of a V2 inference request, made before anything decodes it.

MLServer's pydantic models take any JSON as tensor data and any string as a content type or a
request id. What does not fit then fails deep inside: an integer out of range for its datatype
(``OverflowError`` in numpy), data nested hundreds deep (``RecursionError``), a codec that
cannot take the datatype (``AttributeError``), an id that cannot be an HTTP header
(``UnicodeEncodeError``, or CR/LF that makes uvicorn drop the connection). Other wrong values
pass silently: the strings ``"1.0"`` and ``"NaN"``, ``true`` and ``null`` all become FP64
numbers, ``1.5`` becomes the INT16 1.

:func:`request_problems` names each such problem, looking at every value once, so the runtime
answers 422 before decoding. The rules are the V2 protocol's JSON: finite numbers within the
type's range for FP types, integers within range for INT and UINT types, ``true``/``false`` for
BOOL, strings (or ``null`` for a missing one) for BYTES; data flat, or nested as its shape is.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Collection
from typing import Any

from mlserver.codecs.base import find_input_codec, find_request_codec
from mlserver.types import InferenceRequest, Parameters, RequestInput

__all__ = [
    "MAX_DIMENSIONS",
    "MAX_ID_LENGTH",
    "MAX_PARAMETER_DEPTH",
    "data_problem",
    "id_problem",
    "request_problems",
]

MAX_ID_LENGTH = 256
"""Longest request id accepted: it is echoed in two response headers and the body."""
MAX_DIMENSIONS = 32
"""Most dimensions a tensor's shape may have (numpy's own limit is 64)."""
MAX_PARAMETER_DEPTH = 32
"""Deepest nesting of a parameter's value (MLflow and the batcher walk them recursively)."""

# Printable ASCII, no leading or trailing space: safe as an HTTP header value, as it is copied
# into ``Ce-Id`` and ``Ce-Requestid``.
_ID = re.compile(r"[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?")

_INT_RANGES = {
    "INT8": (-(2**7), 2**7 - 1),
    "INT16": (-(2**15), 2**15 - 1),
    "INT32": (-(2**31), 2**31 - 1),
    "INT64": (-(2**63), 2**63 - 1),
    "UINT8": (0, 2**8 - 1),
    "UINT16": (0, 2**16 - 1),
    "UINT32": (0, 2**32 - 1),
    "UINT64": (0, 2**64 - 1),
}
_FLOAT_MAX = {"FP16": 65504.0, "FP32": 3.4028234663852886e38, "FP64": 1.7976931348623157e308}

# Input codecs that read strings: their data must be BYTES (``np`` takes every datatype).
_STRING_CODECS = frozenset({"str", "base64", "datetime"})
# Input parameters that need no closer look: none, or numpy's (what the pandas codec sends).
_PLAIN_CONTENT_TYPES = frozenset({None, "np"})
_MAX_NAME = 64


def _name(name: str) -> str:
    """``name`` quoted for a message, cut short if it is long."""
    return repr(name if len(name) <= _MAX_NAME else name[:_MAX_NAME] + "...")


def _show(value: Any) -> str:
    """A JSON value as a message shows it."""
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def id_problem(request_id: str | None) -> str | None:
    """Why ``request_id`` cannot be used as a request id; None when it can (or is absent)."""
    if request_id is None:
        return None
    if len(request_id) <= MAX_ID_LENGTH and _ID.fullmatch(request_id):
        return None
    return (
        f"the request id must be 1 to {MAX_ID_LENGTH} printable ASCII characters without "
        f"leading or trailing spaces (it is echoed in response headers); this one has "
        f"{len(request_id)} characters"
    )


# -- values ----------------------------------------------------------------------------------
# A check per datatype returns the index of the first value that does not fit, or -1; they run
# on every value of every request, so they are plain loops (without ``enumerate``: the index is
# looked up only for a value that fails). ``type(v) is`` rather than isinstance: a JSON
# ``true`` is a Python bool, which isinstance calls an int.


def _index_of(values: list[Any], value: Any) -> int:
    """Where ``value`` (the very object) first occurs in ``values``."""
    return next(index for index, item in enumerate(values) if item is value)


def _float_check(limit: float) -> Callable[[list[Any]], int]:
    def first_bad(values: list[Any]) -> int:
        for value in values:
            kind = type(value)
            if (kind is float or kind is int) and -limit <= value <= limit:  # NaN compares False
                continue
            return _index_of(values, value)
        return -1

    return first_bad


def _int_check(low: int, high: int) -> Callable[[list[Any]], int]:
    def first_bad(values: list[Any]) -> int:
        for value in values:
            if type(value) is not int or not low <= value <= high:
                return _index_of(values, value)
        return -1

    return first_bad


def _first_bad_bool(values: list[Any]) -> int:
    for value in values:
        if type(value) is not bool:
            return _index_of(values, value)
    return -1


def _first_bad_bytes(values: list[Any]) -> int:
    for value in values:
        if type(value) is not str and value is not None:
            return _index_of(values, value)
    return -1


_FIRST_BAD: dict[str, Callable[[list[Any]], int]] = {
    **{datatype: _float_check(limit) for datatype, limit in _FLOAT_MAX.items()},
    **{datatype: _int_check(low, high) for datatype, (low, high) in _INT_RANGES.items()},
    "BOOL": _first_bad_bool,
    "BYTES": _first_bad_bytes,
}


def _value_problem(datatype: str, value: Any, index: int) -> str:
    """Why ``value``, at ``index`` in a tensor's data, does not fit ``datatype``."""
    if type(value) is list:
        return "has data that mixes arrays and values at one level"
    kind = type(value)
    if datatype in _INT_RANGES:
        low, high = _INT_RANGES[datatype]
        if kind is int:
            return (
                f"has value {value} at index {index}, out of range for {datatype} ({low} to {high})"
            )
        what = "an integer"
    elif datatype in _FLOAT_MAX:
        if kind is int or kind is float:
            return f"has value {_show(value)} at index {index}, out of range for {datatype}"
        what = "a number"
    else:
        what = "true or false" if datatype == "BOOL" else "a string"
    return f"has value {_show(value)} at index {index}, which is not {what}"


def _flatten(data: list[Any], max_depth: int) -> list[Any] | str:
    """The values of ``data`` in row-major order, or why its nesting is not a tensor's."""
    values = data
    depth = 1
    while values and type(values[0]) is list:
        if depth >= max_depth:
            return f"has data nested deeper than its shape's {max_depth} dimension(s)"
        inner: list[Any] = []
        for item in values:
            if type(item) is not list:
                return "has data that mixes arrays and values at one level"
            inner.extend(item)
        values = inner
        depth += 1
    return values


def data_problem(inp: RequestInput) -> str | None:
    """What is wrong with the shape and data of ``inp`` as its datatype; None when they fit.

    Phrased to follow the input's name: ``has value 300 at index 0, out of range for INT8``.
    """
    shape = inp.shape
    if len(shape) > MAX_DIMENSIONS:
        return f"has {len(shape)} dimensions; at most {MAX_DIMENSIONS} are supported"
    if shape and min(shape) < 0:
        return f"has a negative dimension in shape {shape}"
    data = inp.data.root
    if type(data) is not list:
        return f"has data {_show(data)}, which is not an array"
    if data and type(data[0]) is list:
        values = _flatten(data, max(len(shape), 1))
        if isinstance(values, str):
            return values
    else:
        values = data
    expected = math.prod(shape)
    if len(values) != expected:
        return f"has {len(values)} value(s) but its shape {shape} needs {expected}"
    datatype = inp.datatype if isinstance(inp.datatype, str) else inp.datatype.value
    index = _FIRST_BAD[datatype](values)
    return None if index < 0 else _value_problem(datatype, values[index], index)


# -- parameters ------------------------------------------------------------------------------


def _nested_deeper_than(values: list[Any], limit: int) -> bool:
    """Whether any of ``values`` nests arrays and objects more than ``limit`` levels deep."""
    level = [value for value in values if isinstance(value, list | dict)]
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return True
        level = [
            child
            for item in level
            for child in (item.values() if isinstance(item, dict) else item)
            if isinstance(child, list | dict)
        ]
    return False


def _parameters_problems(
    where: str,
    parameters: Parameters,
    accepted: Collection[str],
    takes: str,
    find_codec: Callable[[str], Any],
) -> list[str]:
    found = []
    content_type = parameters.content_type
    if content_type is not None and find_codec(content_type) is None:
        found.append(f"{where} has an unknown content type {_name(content_type)}")
    extra = parameters.model_extra
    if extra:
        unknown = sorted(name for name in extra if name not in accepted)
        if unknown:
            shown = ", ".join(_name(name) for name in unknown[:5])
            more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
            found.append(f"{where} has unknown parameter(s) {shown}{more}; {takes}")
        elif _nested_deeper_than(list(extra.values()), MAX_PARAMETER_DEPTH):
            found.append(f"{where} has parameters nested deeper than {MAX_PARAMETER_DEPTH}")
    return found


def _input_parameters_problems(inp: RequestInput, parameters: Parameters) -> list[str]:
    where = f"input {_name(inp.name)}"
    takes = "an input takes only content_type"
    found = _parameters_problems(where, parameters, (), takes, find_input_codec)
    if parameters.content_type in _STRING_CODECS and inp.datatype != "BYTES":
        found.append(
            f"{where} has content type {parameters.content_type!r}, which needs datatype "
            f"BYTES, not {inp.datatype}"
        )
    return found


def request_problems(request: InferenceRequest, params: Collection[str] = ()) -> list[str]:
    """Every way ``request`` breaks the rules above; empty when it keeps them.

    ``params`` are the names of the model's own parameters, which ``parameters`` may carry
    besides ``content_type`` (and ``headers``, which the server fills in). Costs about a
    microsecond per input of one value (every request pays it).
    """
    found = []
    problem = id_problem(request.id)
    if problem is not None:
        found.append(problem)
    if request.parameters is not None:
        takes = f"the model's are {sorted(params)}" if params else "the model takes none"
        found += _parameters_problems(
            "the request", request.parameters, params, takes, find_request_codec
        )
    for inp in request.inputs:
        parameters = inp.parameters
        if parameters is not None and (
            parameters.content_type not in _PLAIN_CONTENT_TYPES or parameters.model_extra
        ):
            input_problems = _input_parameters_problems(inp, parameters)
            if input_problems:
                found += input_problems
                continue
        problem = data_problem(inp)
        if problem is not None:
            found.append(f"input {_name(inp.name)} {problem}")
    return found

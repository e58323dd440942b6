"""Request bodies of ``POST /invocations`` read as one DataFrame, or refused with a reason.

SageMaker passes the client's body and ``Content-Type`` through unchanged, so the server takes
the shapes clients send to MLflow, TensorFlow Serving and the Open Inference Protocol:

``application/json``
    ``{"inputs": [{"name": ..., "shape": [n, 1], "datatype": ..., "data": [...]}, ...]}``
    (V2, one input per column, as :func:`mlops_kit.verify.v2.encode_dataframe` writes it);
    ``{"inputs": {"col": [...], ...}}`` or ``{"inputs": [[...], ...]}`` (MLflow's tensor
    form); ``{"dataframe_split": {"columns": [...], "data": [[...]]}}`` or the bare split
    object; ``{"dataframe_records": [{...}]}``, or a bare list of records or of rows;
    ``{"instances": [...]}`` of records or rows.
``text/csv``
    One row a line, with or without a header row naming the columns.

Rows without names take the model's input columns, in order. :class:`RequestRefused` says what
is wrong and which status to answer (400 malformed, 415 unsupported type); the server checks
the columns against the model and answers 422 when they do not fit.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

JSON = "application/json"
CSV = "text/csv"
CONTENT_TYPES = (JSON, CSV)
_FORMS = ("inputs", "instances", "dataframe_split", "dataframe_records")


class RequestRefused(Exception):  # noqa: N818 - it is the answer, not a failure of ours
    """The body cannot be read as a table: answered with ``status`` and ``reason``, never raised
    out of the server."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


def media_type(content_type: str | None) -> str:
    """``text/csv; charset=utf-8`` -> ``text/csv``; the JSON type when none is given."""
    if not content_type:
        return JSON
    return content_type.split(";", 1)[0].strip().lower()


def decode(body: bytes, content_type: str | None, columns: Sequence[str]) -> pd.DataFrame:
    """The table in ``body``; ``columns`` are the model's input names, for rows without names."""
    kind = media_type(content_type)
    if kind not in CONTENT_TYPES:
        raise RequestRefused(
            f"content type {kind!r} is not supported; send {' or '.join(CONTENT_TYPES)}", 415
        )
    if not body.strip():
        raise RequestRefused("the request body is empty")
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RequestRefused(
            f"the body is not UTF-8 text: {exc.reason} at byte {exc.start}"
        ) from None
    if kind == CSV:
        return from_csv(text, columns)
    try:
        document = json.loads(text)
    except RecursionError:
        raise RequestRefused("the JSON is nested too deeply") from None
    except ValueError as exc:
        raise RequestRefused(f"the body is not valid JSON: {exc}") from None
    return from_json(document, columns)


def from_json(document: Any, columns: Sequence[str]) -> pd.DataFrame:
    """The table in a parsed JSON body (the forms the module docstring lists)."""
    if isinstance(document, list):
        return _rows(document, columns, "the body")
    if not isinstance(document, dict):
        raise RequestRefused(f"a JSON body is an object or an array, not {_kind(document)}")
    forms = [form for form in _FORMS if form in document]
    if len(forms) > 1:
        raise RequestRefused(f"the body has {forms}; send exactly one of them")
    form = forms[0] if forms else None
    if form is None and {"columns", "data"} <= document.keys():
        return _split(document)
    if form is None:
        raise RequestRefused(f"a JSON object needs one of the keys {list(_FORMS)}")
    value = document[form]
    if form == "dataframe_split":
        return _split(value)
    if form == "inputs" and isinstance(value, list) and value and _is_v2(value[0]):
        return _v2(value)
    if form == "inputs" and isinstance(value, dict):
        return _columns(value)
    return _rows(value, columns, repr(form))


def from_csv(text: str, columns: Sequence[str]) -> pd.DataFrame:
    """Rows of CSV; the first is a header when it names the columns or is not all numbers."""
    import pandas as pd

    try:
        rows = [row for row in csv.reader(io.StringIO(text)) if row]
    except csv.Error as exc:
        raise RequestRefused(f"the body is not valid CSV: {exc}") from None
    if not rows:
        raise RequestRefused("the CSV has no rows")
    names = list(columns)
    first = [field.strip() for field in rows[0]]
    if first == names or not all(_is_number(field) for field in first):
        names, rows = first, rows[1:]
    if not rows:
        raise RequestRefused("the CSV has a header but no rows")
    if not names:
        raise RequestRefused("the CSV has no header and the model names no columns")
    for number, row in enumerate(rows, start=1):
        if len(row) != len(names):
            raise RequestRefused(f"CSV row {number} has {len(row)} fields, not {len(names)}")
    frame = pd.DataFrame(rows, columns=names)
    for name in frame.columns:
        column = frame[name].str.strip()
        column = column.mask(column == "")  # an empty field is a missing value
        try:
            frame[name] = pd.to_numeric(column)
        except (TypeError, ValueError):
            frame[name] = column  # text: the model's schema decides whether it may be
    return frame


def _is_number(field: str) -> bool:
    try:
        float(field)
    except ValueError:
        return not field.strip()  # an empty field is a missing number
    return True


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    return "a string" if isinstance(value, str) else "a scalar"


def _is_v2(item: Any) -> bool:
    # A V2 input has a name, data, a shape and a datatype; a record may have the first two.
    return (
        isinstance(item, dict)
        and {"name", "data"} <= item.keys()
        and bool({"shape", "datatype"} & item.keys())
    )


def _v2(inputs: list[Any]) -> pd.DataFrame:
    """One column per V2 input of shape ``[n]`` or ``[n, 1]``."""

    table: dict[str, list[Any]] = {}
    for index, item in enumerate(inputs):
        if not _is_v2(item) or not isinstance(item["name"], str):
            raise RequestRefused(f"input {index} needs a string 'name', 'shape' and 'data'")
        name, values = item["name"], item["data"]
        if name in table:
            raise RequestRefused(f"input {name!r} is given more than once")
        if not isinstance(values, list):
            raise RequestRefused(f"input {name!r}: 'data' must be an array")
        flat = [v[0] if isinstance(v, list) and len(v) == 1 else v for v in values]
        if any(isinstance(v, list | dict) for v in flat):
            raise RequestRefused(f"input {name!r}: a column's data is flat or [[v], ...]")
        shape = item.get("shape", [len(flat)])
        if not (isinstance(shape, list) and shape in ([len(flat)], [len(flat), 1])):
            raise RequestRefused(f"input {name!r}: shape {shape} does not fit {len(flat)} values")
        table[name] = flat
    return _frame(table, "inputs")


def _columns(value: dict[str, Any]) -> pd.DataFrame:
    """``{"col": [values], ...}``, or one row of scalars."""
    if all(not isinstance(v, list | dict) for v in value.values()):
        return _records([value], "'inputs'")
    if not all(isinstance(v, list) for v in value.values()):
        raise RequestRefused("'inputs' maps each column to an array of its values")
    return _frame(value, "'inputs'")


def _frame(table: dict[str, list[Any]], where: str) -> pd.DataFrame:
    import pandas as pd

    lengths = {len(values) for values in table.values()}
    if not table or 0 in lengths:
        raise RequestRefused(f"{where} has no rows")
    if len(lengths) > 1:
        raise RequestRefused(f"the columns of {where} have different lengths {sorted(lengths)}")
    return pd.DataFrame(table)


def _split(value: Any) -> pd.DataFrame:
    import pandas as pd

    if not (isinstance(value, dict) and isinstance(value.get("data"), list)):
        raise RequestRefused("a split table is an object with 'columns' and 'data' arrays")
    columns = value.get("columns")
    if not (isinstance(columns, list) and all(isinstance(c, str) for c in columns)):
        raise RequestRefused("a split table's 'columns' is an array of names")
    rows = value["data"]
    _check_rows(rows, len(columns), "'data'")
    return pd.DataFrame(rows, columns=columns)


def _rows(value: Any, columns: Sequence[str], where: str) -> pd.DataFrame:
    """Records (objects) or rows (arrays, in the model's column order)."""
    import pandas as pd

    if not isinstance(value, list) or not value:
        raise RequestRefused(f"{where} must be a non-empty array of rows")
    if all(isinstance(row, dict) for row in value):
        return _records(value, where)
    if not columns:
        raise RequestRefused(f"{where} has unnamed rows and the model names no columns")
    _check_rows(value, len(columns), where)
    return pd.DataFrame(value, columns=list(columns))


def _check_rows(rows: Any, width: int, where: str) -> None:
    if not isinstance(rows, list) or not rows:
        raise RequestRefused(f"{where} must be a non-empty array of rows")
    for number, row in enumerate(rows, start=1):
        if not isinstance(row, list):
            raise RequestRefused(f"{where}: row {number} is {_kind(row)}, not an array")
        if len(row) != width:
            raise RequestRefused(f"{where}: row {number} has {len(row)} values, not {width}")
        if any(isinstance(v, list | dict) for v in row):
            raise RequestRefused(f"{where}: row {number} holds a nested value")


def _records(records: list[Any], where: str) -> pd.DataFrame:
    import pandas as pd

    for number, record in enumerate(records, start=1):
        if not isinstance(record, dict):
            raise RequestRefused(f"{where}: row {number} is {_kind(record)}, not an object")
        if any(isinstance(v, list | dict) for v in record.values()):
            raise RequestRefused(f"{where}: row {number} holds a nested value")
    return pd.DataFrame.from_records(records)


__all__ = ["CONTENT_TYPES", "CSV", "JSON", "RequestRefused", "decode", "from_csv", "from_json"]

"""The ``validate`` step's checks: the data's schema and simple expectations.

The target column must exist and have no missing value; the rest is declared in
``pipeline.expectations``: row-count bounds, columns with their type, whether features may
have missing values. The first broken expectation stops the pipeline with
:class:`~mlops_kit.errors.DataValidationFailed`, naming the column.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlops_kit.errors import DataValidationFailed

if TYPE_CHECKING:
    import pandas as pd

    from mlops_kit.settings_pipeline import Expectations


def _kind_checks() -> dict[str, Any]:
    from pandas.api import types

    return {
        "number": lambda s: types.is_numeric_dtype(s) and not types.is_bool_dtype(s),
        "integer": lambda s: types.is_integer_dtype(s) or (
            types.is_float_dtype(s) and bool((s.dropna() % 1 == 0).all())
        ),
        "float": types.is_float_dtype,
        "string": lambda s: types.is_string_dtype(s) or types.is_object_dtype(s),
        "bool": types.is_bool_dtype,
        "category": lambda s: isinstance(s.dtype, types.CategoricalDtype)
        or types.is_object_dtype(s) or types.is_string_dtype(s),
        "datetime": types.is_datetime64_any_dtype,
    }  # fmt: skip


def check_table(table: pd.DataFrame, target: str, expect: Expectations) -> dict[str, Any]:
    """What was checked and found, as plain data; DataValidationFailed naming the column."""
    rows = len(table)
    if expect.min_rows is not None and rows < expect.min_rows:
        raise DataValidationFailed(None, f"{rows} rows, fewer than min_rows {expect.min_rows}")
    if expect.max_rows is not None and rows > expect.max_rows:
        raise DataValidationFailed(None, f"{rows} rows, more than max_rows {expect.max_rows}")
    columns = [str(c) for c in table.columns]
    if target not in table.columns:
        raise DataValidationFailed(target, f"the target column is missing; columns: {columns}")
    missing_target = int(table[target].isna().sum())
    if missing_target:
        raise DataValidationFailed(target, f"the target has {missing_target} missing values")
    kinds = _kind_checks()
    for name, kind in expect.columns.items():
        if name not in table.columns:
            raise DataValidationFailed(name, f"declared as {kind} but absent; columns: {columns}")
        if not kinds[kind](table[name]):
            raise DataValidationFailed(name, f"declared as {kind} but holds {table[name].dtype}")
    missing = {str(c): int(n) for c, n in table.isna().sum().items() if n}
    if missing and not expect.allow_missing:
        name, count = next(iter(missing.items()))
        raise DataValidationFailed(name, f"{count} missing values (allow_missing is false)")
    return {
        "rows": rows,
        "columns": len(columns),
        "target": target,
        "declared": dict(expect.columns),
        "missing_values": missing,
    }

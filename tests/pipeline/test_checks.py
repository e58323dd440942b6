"""The validate step's checks: a broken expectation names the column."""

import pandas as pd
import pytest

from mlops_kit.errors import DataValidationFailed
from mlops_kit.pipeline.checks import check_table
from mlops_kit.settings_pipeline import Expectations


@pytest.fixture
def table():
    return pd.DataFrame(
        {"age": [31, 45, 52], "city": ["a", "b", None], "price": [1.5, 2.0, 3.5], "y": [0, 1, 0]}
    )


def test_a_table_that_meets_the_expectations_is_described(table):
    expect = Expectations(min_rows=2, max_rows=10, columns={"age": "integer", "price": "number"})
    report = check_table(table, "y", expect)
    assert report["rows"] == 3 and report["missing_values"] == {"city": 1}


@pytest.mark.parametrize(
    ("expect", "target", "message"),
    [
        ({"min_rows": 5}, "y", "3 rows, fewer than min_rows 5"),
        ({"max_rows": 2}, "y", "3 rows, more than max_rows 2"),
        ({}, "label", "column 'label': the target column is missing"),
        ({"columns": {"age": "string"}}, "y", "column 'age': declared as string but holds int64"),
        ({"columns": {"price": "integer"}}, "y", "column 'price': declared as integer"),
        ({"columns": {"zip": "string"}}, "y", "column 'zip': declared as string but absent"),
        ({"allow_missing": False}, "y", "column 'city': 1 missing values"),
    ],
)
def test_a_broken_expectation_names_the_column(table, expect, target, message):
    with pytest.raises(DataValidationFailed, match=message):
        check_table(table, target, Expectations(**expect))


def test_a_missing_target_value_is_never_allowed(table):
    table.loc[1, "y"] = None
    with pytest.raises(DataValidationFailed, match="column 'y': the target has 1 missing values"):
        check_table(table, "y", Expectations())


def test_row_bounds_out_of_order_are_refused_at_load_time():
    with pytest.raises(ValueError, match="min_rows 5 is above max_rows 2"):
        Expectations(min_rows=5, max_rows=2)

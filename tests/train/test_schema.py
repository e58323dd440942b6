"""Input schemas compared column by column; MLflow's schema errors told without the data."""

from mlops_kit.train.schema import SchemaChange, compare, schema_reason

WINE = {"alcohol": "double", "ash": "double", "hue": "double"}


def test_columns_added_removed_and_retyped():
    change = compare("4", WINE, {"alcohol": "double", "hue": "long", "colour": "string"})
    assert change.added == ["colour"]
    assert change.removed == ["ash"]
    assert change.retyped == [("hue", "double", "long")]
    assert change.summary() == (
        "the input schema differs from champion v4's: 1 column added (colour), "
        "1 column removed (ash), 1 column retyped (hue double->long)"
    )


def test_the_same_columns_are_no_change():
    assert not compare("1", WINE, dict(WINE))
    assert not compare("1", WINE, dict(reversed(WINE.items())))  # order is no change


def test_many_columns_are_named_a_few_and_counted():
    change = compare("1", {}, {f"c{i}": "double" for i in range(30)})
    assert change.summary().endswith("30 columns added (c0, c1, c2, … 27 more)")


def test_a_refusal_without_signatures_is_a_change_too():
    change = SchemaChange(champion_version="2", refusal="the data does not fit")
    assert (
        change and change.summary() == "champion v2 cannot score this data: the data does not fit"
    )


def test_mlflow_schema_errors_keep_the_reason_only():
    frame = "     mean radius  mean texture\n0   17.99  10.38\n" * 50
    text = (
        f"Failed to enforce schema of data '{frame}' with schema "
        "'['alcohol': double (required)]'. Error: Model is missing inputs ['alcohol']."
    )
    assert schema_reason(text) == (
        "the data does not fit the model's input schema: Model is missing inputs ['alcohol']."
    )
    long = schema_reason("Failed to enforce schema of data 'x'. Error: " + "y" * 1000)
    assert long is not None and len(long) < 400 and long.endswith("…")
    assert schema_reason("ZeroDivisionError: division by zero") is None

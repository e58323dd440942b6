"""The V2 rules every request must keep before our runtime decodes it."""

from __future__ import annotations

from typing import Any

import mlserver_mlflow.codecs  # noqa: F401 - registers the "dict" request codec, as the runtime does
import pytest
from mlserver.types import InferenceRequest

from mlops_kit.serving.payload import (
    MAX_DIMENSIONS,
    MAX_ID_LENGTH,
    MAX_PARAMETER_DEPTH,
    id_problem,
    request_problems,
)


def tensor(datatype: str = "FP64", data: Any = None, shape: list[int] | None = None, **extra: Any):
    data = [1.0] if data is None else data
    shape = [len(data)] if shape is None else shape
    return {"name": "x", "shape": shape, "datatype": datatype, "data": data, **extra}


def problems(*inputs: dict[str, Any], params: tuple[str, ...] = (), **fields: Any) -> list[str]:
    request = InferenceRequest.model_validate({"inputs": list(inputs), **fields})
    return request_problems(request, params)


def nested(depth: int, value: Any = 1.0) -> Any:
    for _ in range(depth):
        value = [value]
    return value


def test_a_request_that_keeps_the_rules_has_no_problems() -> None:
    assert (
        problems(
            tensor("FP64", [1.0, 2, -3.5e300]),
            tensor("FP16", [65504.0]),
            tensor("INT8", [-128, 127]),
            tensor("UINT64", [0, 2**64 - 1]),
            tensor("BOOL", [True, False]),
            tensor("BYTES", ["a", None], parameters={"content_type": "str"}),
            tensor("FP32", [[1.0, 2.0], [3.0, 4.0]], shape=[2, 2]),
            tensor("FP64", [], shape=[0, 13]),
            id="request-1",
            parameters={"content_type": "pd"},
        )
        == []
    )


@pytest.mark.parametrize(
    ("datatype", "value", "expected"),
    [
        ("INT8", 128, "value 128 at index 0, out of range for INT8 (-128 to 127)"),
        ("INT8", -129, "out of range for INT8"),
        ("UINT8", -1, "value -1 at index 0, out of range for UINT8 (0 to 255)"),
        ("INT16", 2**15, "out of range for INT16"),
        ("UINT16", 2**16, "out of range for UINT16"),
        ("INT32", -(2**31) - 1, "out of range for INT32"),
        ("UINT32", 2**32, "out of range for UINT32"),
        ("INT64", 2**63, "out of range for INT64"),
        ("UINT64", 2**64, "out of range for UINT64"),
        ("INT64", 1.5, "value 1.5 at index 0, which is not an integer"),
        ("INT32", 2.0, "which is not an integer"),
        ("INT64", True, "value true at index 0, which is not an integer"),
        ("FP64", None, "value null at index 0, which is not a number"),
        ("FP64", "1.0", 'value "1.0" at index 0, which is not a number'),
        ("FP64", "NaN", "which is not a number"),
        ("FP64", True, "value true at index 0, which is not a number"),
        ("FP64", float("nan"), "value NaN at index 0, out of range for FP64"),
        ("FP64", float("inf"), "out of range for FP64"),
        ("FP32", 1e39, "value 1e+39 at index 0, out of range for FP32"),
        ("FP16", 70000.0, "out of range for FP16"),
        ("FP64", 10**400, "out of range for FP64"),
        ("FP64", {"a": 1}, "value an object at index 0, which is not a number"),
        ("BOOL", 1, "value 1 at index 0, which is not true or false"),
        ("BOOL", "true", "which is not true or false"),
        ("BYTES", 5, "value 5 at index 0, which is not a string"),
    ],
)
def test_values_must_fit_their_datatype(datatype: str, value: Any, expected: str) -> None:
    found = problems(tensor(datatype, [value]))
    assert len(found) == 1 and found[0].startswith("input 'x' has ")
    assert expected in found[0]


def test_the_first_bad_value_is_named_with_its_index() -> None:
    assert problems(tensor("INT8", [1, 2, 3, 300, 400])) == [
        "input 'x' has value 300 at index 3, out of range for INT8 (-128 to 127)"
    ]
    assert problems(tensor("FP64", [[1.0, 2.0], [3.0, "x"]], shape=[2, 2])) == [
        """input 'x' has value "x" at index 3, which is not a number"""
    ]


def test_data_must_be_an_array_nested_as_its_shape() -> None:
    assert problems(tensor("FP64", [1.0, 2.0], shape=[3])) == [
        "input 'x' has 2 value(s) but its shape [3] needs 3"
    ]
    assert problems(tensor("FP64", 5.0, shape=[1])) == [
        "input 'x' has data 5.0, which is not an array"
    ]
    assert problems(tensor("FP64", nested(2), shape=[1])) == [
        "input 'x' has data nested deeper than its shape's 1 dimension(s)"
    ]
    mixed = "input 'x' has data that mixes arrays and values at one level"
    assert problems(tensor("FP64", [[1.0], 2.0], shape=[2, 1])) == [mixed]
    assert problems(tensor("FP64", [1.0, [2.0]], shape=[2, 1])) == [mixed]
    # Deep nesting is walked without recursion, whatever the depth.
    found = problems(tensor("FP64", nested(5000), shape=[1] * 4))
    assert found == ["input 'x' has data nested deeper than its shape's 4 dimension(s)"]


def test_shapes_are_bounded() -> None:
    assert problems(tensor("FP64", [1.0], shape=[1] * (MAX_DIMENSIONS + 1))) == [
        f"input 'x' has {MAX_DIMENSIONS + 1} dimensions; at most {MAX_DIMENSIONS} are supported"
    ]
    assert problems(tensor("FP64", [1.0], shape=[-1])) == [
        "input 'x' has a negative dimension in shape [-1]"
    ]
    assert "needs 18446744073709551616" in problems(tensor("FP64", [1.0], shape=[2**64]))[0]


@pytest.mark.parametrize(
    "request_id",
    ["", " padded", "padded ", "é", "€", "a\r\nSet-Cookie: x", "a\nb", "a\x00", "t\tb", "x" * 257],
)
def test_request_ids_must_be_safe_header_values(request_id: str) -> None:
    problem = id_problem(request_id)
    assert problem is not None and f"1 to {MAX_ID_LENGTH} printable ASCII" in problem
    assert request_id not in problem or not request_id  # a bad id is not echoed
    assert problems(tensor(), id=request_id) == [problem]


def test_a_huge_id_is_refused_without_echoing_it() -> None:
    [problem] = problems(tensor(), id="x" * 100_000)
    assert len(problem) < 200 and "100000 characters" in problem


def test_good_ids_pass() -> None:
    for request_id in ("1", "a b", "550e8400-e29b-41d4-a716-446655440000", "~" * MAX_ID_LENGTH):
        assert id_problem(request_id) is None


def test_content_types_must_be_known_and_fit_the_datatype() -> None:
    assert problems(tensor(), parameters={"content_type": "datetime"}) == [
        "the request has an unknown content type 'datetime'"
    ]
    assert problems(tensor(parameters={"content_type": "nope"})) == [
        "input 'x' has an unknown content type 'nope'"
    ]
    assert problems(tensor(parameters={"content_type": "datetime"})) == [
        "input 'x' has content type 'datetime', which needs datatype BYTES, not FP64"
    ]
    dates = tensor("BYTES", ["2026-01-01T00:00:00"], parameters={"content_type": "datetime"})
    assert problems(dates, parameters={"content_type": "dict"}) == []


def test_parameters_must_be_the_models_own() -> None:
    assert problems(tensor(), parameters={"temperature": 1}) == [
        "the request has unknown parameter(s) 'temperature'; the model takes none"
    ]
    assert problems(tensor(), parameters={"temperature": 1}, params=("temperature",)) == []
    assert problems(tensor(), parameters={"top_k": 1}, params=("temperature",)) == [
        "the request has unknown parameter(s) 'top_k'; the model's are ['temperature']"
    ]
    assert problems(tensor(parameters={"scale": 2})) == [
        "input 'x' has unknown parameter(s) 'scale'; an input takes only content_type"
    ]
    many = {f"p{i}": i for i in range(8)}
    assert "'p4' and 3 more" in problems(tensor(), parameters=many)[0]


def test_parameter_values_are_bounded_in_depth() -> None:
    ok = {"temperature": nested(MAX_PARAMETER_DEPTH - 1, {"a": 1})}
    assert problems(tensor(), parameters=ok, params=("temperature",)) == []
    deep = {"temperature": nested(2000)}
    assert problems(tensor(), parameters=deep, params=("temperature",)) == [
        f"the request has parameters nested deeper than {MAX_PARAMETER_DEPTH}"
    ]


def test_long_names_are_cut_short_in_messages() -> None:
    [problem] = problems({**tensor("INT8", [999]), "name": "n" * 10_000})
    assert len(problem) < 200 and "nnn..." in problem

"""Our MLServer runtime answers bad requests with 4xx JSON, and the V2 helpers that talk to it."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import httpx
import numpy as np
import pandas as pd
import pytest
from mlflow.types.schema import ColSpec, Schema, TensorSpec
from mlserver.types import InferenceRequest

from mlops_kit.serving.runtime import RequestValidator
from mlops_kit.verify.v2 import decode_outputs, encode_dataframe, infer, infer_url

if TYPE_CHECKING:
    from tests.support.serving import Models, Served

pytest_plugins = ["tests.support.serving"]


@pytest.fixture(scope="module")
def client(staging_server: Served) -> Iterator[httpx.Client]:
    base = staging_server.endpoint.split("/v2/")[0]
    with httpx.Client(base_url=base, timeout=10, trust_env=False) as client:
        yield client


@pytest.fixture
def good_body(models: Models) -> dict[str, Any]:
    return encode_dataframe(models.rows(4))


def post(client: httpx.Client, body: Any, model: str = "wine") -> httpx.Response:
    return client.post(f"/v2/models/{model}/infer", json=body)


def assert_rejected(response: httpx.Response, *fragments: str, status: int = 422) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert "Traceback" not in response.text
    message = response.json()["error"]
    for fragment in fragments:
        assert fragment in message
    return str(message)


# -- against the live server ------------------------------------------------------------------


def test_a_good_request_gets_the_models_local_predictions(
    client: httpx.Client, models: Models
) -> None:
    rows = models.rows(8)
    response = post(client, encode_dataframe(rows))
    assert response.status_code == 200
    body = response.json()
    assert body["model_name"] == "wine" and body["model_version"] == "1"
    assert list(decode_outputs(body)) == list(models.predictions_v1[rows.index])


def test_wrong_columns_get_422_naming_them(client: httpx.Client, good_body: dict) -> None:
    body = copy.deepcopy(good_body)
    body["inputs"][0]["name"] = "alcohol_pct"
    message = assert_rejected(post(client, body), "missing input(s) ['alcohol']", "'alcohol_pct'")
    assert message.startswith("request does not match the input schema of model 'wine'")

    del body["inputs"][0]
    assert_rejected(post(client, body), "missing input(s) ['alcohol']")


def test_wrong_shapes_get_422_naming_them(client: httpx.Client, good_body: dict) -> None:
    body = copy.deepcopy(good_body)
    body["inputs"][1]["shape"] = [3, 1]
    assert_rejected(post(client, body), "'malic_acid' has 4 value(s) but its shape [3, 1] needs 3")

    body = copy.deepcopy(good_body)
    body["inputs"][2]["shape"] = [2, 2]
    assert_rejected(post(client, body), "'ash' has shape [2, 2]", "[n] or [n, 1]")

    body = copy.deepcopy(good_body)
    body["inputs"][0].update(shape=[3, 1], data=body["inputs"][0]["data"][:3])
    assert_rejected(post(client, body), "different numbers of rows", "3 rows: 'alcohol'")

    features = good_body["inputs"]
    one_tensor = {
        "inputs": [
            {
                "name": "x",
                "shape": [1, len(features)],
                "datatype": "FP64",
                "data": [i["data"][0] for i in features],
            }
        ]
    }
    assert_rejected(post(client, one_tensor), "unexpected input(s) ['x']", "the model takes")


def test_wrong_datatypes_get_422(client: httpx.Client, good_body: dict) -> None:
    body = copy.deepcopy(good_body)
    body["inputs"][0].update(datatype="BYTES", data=["a", "b", "c", "d"])
    assert_rejected(post(client, body), "'alcohol' has datatype BYTES", "double")

    body = copy.deepcopy(good_body)
    body["inputs"][3]["data"] = ["x", 1.0, 2.0, 3.0]
    message = assert_rejected(post(client, body), """'alcalinity_of_ash' has value "x" at index""")
    assert message.startswith("invalid inference request for model 'wine'")

    # Values a codec would silently convert are refused too: strings, booleans, nulls.
    for value in ("1.0", True, None):
        body["inputs"][3]["data"] = [value, 1.0, 2.0, 3.0]
        assert_rejected(post(client, body), "which is not a number")

    # An integer out of its datatype's range (numpy raised OverflowError: a 500 before).
    body = copy.deepcopy(good_body)
    body["inputs"][4].update(datatype="INT8", data=[1, 2, 3, 300])
    assert_rejected(post(client, body), "value 300 at index 3, out of range for INT8")

    # MLflow's own schema enforcement refuses int64 -> double; its message, not its data dump.
    body = copy.deepcopy(good_body)
    body["inputs"][4].update(datatype="INT64", data=[1, 2, 3, 4])
    message = assert_rejected(post(client, body), "Can not safely convert int64 to float64")
    assert "Failed to enforce schema of data" not in message


def test_protocol_errors_keep_mlservers_answers(client: httpx.Client, good_body: dict) -> None:
    bad_json = client.post(
        "/v2/models/wine/infer", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert bad_json.status_code == 422 and "Traceback" not in bad_json.text
    unknown = post(client, good_body, model="no-such-model")
    assert unknown.status_code == 404
    assert unknown.json() == {"error": "Model no-such-model not found"}


def test_the_server_keeps_serving_after_bad_requests(
    client: httpx.Client, staging_server: Served, models: Models
) -> None:
    body = encode_dataframe(models.rows(2))
    body["inputs"][0]["name"] = "nope"
    for _ in range(3):
        assert post(client, body).status_code == 422
    rows = models.rows(3)
    assert list(infer(client, "wine", rows)) == list(models.predictions_v1[rows.index])
    # Rejections are answers, not crashes: nothing went to the log as an error.
    assert "Traceback" not in staging_server.target.log_path("wine").read_text()


# -- the validator on its own -----------------------------------------------------------------


def request(*inputs: dict[str, Any]) -> InferenceRequest:
    return InferenceRequest.model_validate({"inputs": list(inputs)})


def column(name: str, n: int = 2, datatype: str = "FP64", **extra: Any) -> dict[str, Any]:
    return {"name": name, "shape": [n, 1], "datatype": datatype, "data": [1.0] * n, **extra}


def test_validator_columns() -> None:
    schema = Schema(
        [ColSpec("double", "a"), ColSpec("string", "s"), ColSpec("long", "n", required=False)]
    )
    validator = RequestValidator.from_schema(schema, "m")
    assert validator is not None
    ok = request(column("a"), column("s", datatype="BYTES", data=["x", "y"]))
    assert validator.problems(ok) == []
    assert validator.problems(request(column("s", datatype="BYTES", data=["x", "y"]))) == [
        "missing input(s) ['a']",
        "the model takes ['a', 's', 'n']",
    ]
    problems = validator.problems(
        request(column("a"), column("s", datatype="FP64"), column("n", datatype="FP32"))
    )
    assert any("'s' has datatype FP64" in p for p in problems)
    assert any("'n' has datatype FP32" in p for p in problems)
    doubled = request(column("a"), column("a"), column("s", datatype="BYTES", data=["x", "y"]))
    assert validator.problems(doubled) == ["input 'a' is given more than once"]
    flat = request({"name": "a", "shape": [2], "datatype": "FP64", "data": [1.0, 2.0]})
    assert validator.problems(flat) == ["missing input(s) ['s']", "the model takes ['a', 's', 'n']"]
    nested = column("a", data=[[1.0], [2.0]])
    assert validator.problems(request(nested, column("s", datatype="BYTES", data=["x", "y"]))) == []


def test_validator_tensors_and_no_schema() -> None:
    assert RequestValidator.from_schema(None) is None
    unnamed = RequestValidator.from_schema(Schema([TensorSpec(np.dtype("float32"), (-1, 4))]))
    assert unnamed is not None
    good = {"name": "anything", "shape": [2, 4], "datatype": "FP32", "data": [0.0] * 8}
    assert unnamed.problems(request(good)) == []
    assert unnamed.problems(request({**good, "shape": [4, 2]})) == [
        "input 'anything' has shape [4, 2]; the model expects ['n', 4]"
    ]
    assert unnamed.problems(request(good, good)) == [
        "the model takes 1 input(s), the request has 2"
    ]
    assert unnamed.problems(request({**good, "datatype": "BYTES"}))[0].startswith(
        "input 'anything' has datatype BYTES"
    )


# -- V2 helpers -------------------------------------------------------------------------------


def test_encode_dataframe_follows_the_pandas_codec() -> None:
    df = pd.DataFrame(
        {
            "f": [1.5, np.nan],
            "i": np.array([1, 2], dtype="int32"),
            "b": [True, False],
            "s": ["x", None],
            "t": pd.to_datetime(["2026-01-01", "2026-01-02"]),
        }
    )
    body = encode_dataframe(df)
    assert body["parameters"] == {"content_type": "pd"}
    inputs = {i["name"]: i for i in body["inputs"]}
    assert inputs["f"] == {"name": "f", "shape": [2, 1], "datatype": "FP64", "data": [1.5, None]}
    assert inputs["i"]["datatype"] == "INT32" and inputs["i"]["data"] == [1, 2]
    assert inputs["b"]["datatype"] == "BOOL"
    assert inputs["s"]["datatype"] == "BYTES" and inputs["s"]["data"] == ["x", None]
    assert inputs["s"]["parameters"] == {"content_type": "str"}
    assert inputs["t"]["data"] == ["2026-01-01T00:00:00", "2026-01-02T00:00:00"]


def test_decode_outputs_and_urls() -> None:
    response = {
        "outputs": [
            {"name": "predict", "shape": [3, 1], "datatype": "INT64", "data": [0, 1, 2]},
            {"name": "proba", "shape": [3, 2], "datatype": "FP32", "data": [0.1] * 6},
        ]
    }
    labels = decode_outputs(response)
    assert labels.tolist() == [0, 1, 2] and labels.dtype == np.int64
    assert decode_outputs(response, "proba").shape == (3, 2)
    with pytest.raises(ValueError, match="no output 'nope'"):
        decode_outputs(response, "nope")
    with pytest.raises(ValueError, match="no outputs"):
        decode_outputs({"outputs": []})

    assert infer_url("http://h:1", "m") == "http://h:1/v2/models/m/infer"
    assert infer_url("http://h:1/v2/models/m/", "m") == "http://h:1/v2/models/m/infer"
    assert infer_url("http://h:1/v2/models/m/infer", "m") == "http://h:1/v2/models/m/infer"

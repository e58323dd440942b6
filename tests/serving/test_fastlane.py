"""The fast inference route answers as MLServer's own route does, and the flavour's predict
called directly predicts as MLflow's pyfunc does."""

from __future__ import annotations

import asyncio
import json
import pathlib
import re
import shutil
from typing import TYPE_CHECKING, Any

import httpx
import mlflow.pyfunc
import numpy as np
import pandas as pd
import pytest

from mlops_kit.serving import fastlane
from mlops_kit.serving.batching import Columns, concat
from mlops_kit.serving.predictor import _direct_columns, model_predict
from mlops_kit.verify.v2 import encode_dataframe

if TYPE_CHECKING:
    from mlserver.handlers import DataPlane

    from tests.support.serving import Models, Served

pytest_plugins = ["tests.support.serving"]


def columns_of(frame: pd.DataFrame) -> Columns:
    return Columns({str(name): frame[name].to_numpy() for name in frame.columns})


# -- the flavour called directly ------------------------------------------------------------------


@pytest.mark.parametrize("which", ["v1", "row_ids"])
def test_direct_predict_gives_pyfuncs_predictions(models: Models, which: str) -> None:
    model = mlflow.pyfunc.load_model(str(getattr(models, which)))
    assert _direct_columns(model) is not None  # a scikit-learn model of float64 columns
    predict = model_predict(model)
    X = models.X.astype("float64")
    parts = [columns_of(X.iloc[i : i + n]) for i, n in ((0, 1), (1, 7), (8, 50), (58, 120))]
    for data in [*parts, concat(parts)]:
        expected = model.predict(data.frame())
        assert np.array_equal(predict(data, None), expected)
    assert np.array_equal(predict(columns_of(X), None), model.predict(X))


def test_what_the_flavour_cannot_take_as_it_is_goes_through_mlflow(models: Models) -> None:
    from mlflow.exceptions import MlflowException

    model = mlflow.pyfunc.load_model(str(models.row_ids))
    predict = model_predict(model)
    X = models.X.astype("float64").head(20)
    arrays = columns_of(X).arrays
    # float32 where the schema has doubles: MLflow converts, exactly as it would alone.
    as_f32 = Columns({**arrays, "hue": arrays["hue"].astype("float32")})
    reordered = Columns(dict(reversed(list(arrays.items()))))
    for data in (as_f32, reordered):
        assert np.array_equal(predict(data, None), model.predict(data.frame()))
    assert np.array_equal(predict(X, None), model.predict(X))
    assert np.array_equal(predict(columns_of(X), {"x": 1}), model.predict(X, params={"x": 1}))
    # What MLflow refuses is refused the same way: int64 for a double.
    as_ints = Columns({**arrays, "proline": X["proline"].astype("int64").to_numpy()})
    with pytest.raises(MlflowException) as alone:
        model.predict(as_ints.frame())
    with pytest.raises(MlflowException) as ours:
        predict(as_ints, None)
    assert str(ours.value) == str(alone.value)


def test_a_model_folder_loaded_again_is_the_same_model(
    models: Models, tmp_path: pathlib.Path
) -> None:
    from mlops_kit.serving import predictor

    folder = tmp_path / "model"
    shutil.copytree(models.v1, folder)
    first = predictor.load_model(str(folder))
    assert predictor.load_model(str(folder)) is first  # a promotion's preview, then the swap
    (folder / "MLmodel").touch()  # the folder changed: loaded again
    second = predictor.load_model(str(folder))
    assert second is not first
    for other in (models.v2, models.row_ids):  # the oldest of more than KEEP_LOADED goes
        predictor.load_model(str(other))
    assert predictor.load_model(str(folder)) is not second
    broken = tmp_path / "broken"
    shutil.copytree(models.broken, broken)
    for _ in range(2):  # a failure is not kept
        with pytest.raises(Exception):  # noqa: B017 - whatever MLflow raises
            predictor.load_model(str(broken))


def test_a_frame_of_one_dtype_is_the_frame_of_the_columns() -> None:
    rng = np.random.default_rng(0)
    for dtype in ("float64", "float32", "int64", "bool"):
        arrays = {f"c{i}": rng.normal(size=5).astype(dtype) for i in range(4)}
        made = Columns(arrays).frame()
        pd.testing.assert_frame_equal(made, pd.DataFrame(arrays), check_exact=True)
        assert made.columns.dtype == pd.DataFrame(arrays).columns.dtype
    mixed = {"a": np.array([1.0, 2.0]), "b": np.array([1, 2])}
    pd.testing.assert_frame_equal(Columns(mixed).frame(), pd.DataFrame(mixed), check_exact=True)


# -- the route, in process: the same answers as MLServer's route -----------------------------------


class App:
    """MLServer's REST app with the guard and the fast route, called without a socket."""

    def __init__(self, app: Any, data_plane: DataPlane) -> None:
        self.app = app
        self.data_plane = data_plane

    def call(self, body: bytes, path: str = "/v2/models/wine/infer") -> tuple[int, dict, bytes]:
        async def run() -> list[dict]:
            sent: list[dict] = []
            scope = {
                "type": "http",
                "asgi": {"version": "3.0"},
                "http_version": "1.1",
                "method": "POST",
                "scheme": "http",
                "path": path,
                "raw_path": path.encode(),
                "root_path": "",
                "query_string": b"",
                "server": ("127.0.0.1", 80),
                "client": ("127.0.0.1", 5000),
                "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"application/json")],
                "state": {},
            }

            async def receive() -> dict:
                return {"type": "http.request", "body": body, "more_body": False}

            async def send(message: dict) -> None:
                sent.append(message)

            await self.app(scope, receive, send)
            return sent

        sent = self.loop.run_until_complete(run())
        headers = {k.decode(): v.decode() for k, v in sent[0]["headers"]}
        return sent[0]["status"], headers, b"".join(m.get("body", b"") for m in sent[1:])

    loop: asyncio.AbstractEventLoop


@pytest.fixture(scope="module")
def apps(models: Models, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """``(fast, stock)``: one MLServer with our runtime, its app with and without the route."""
    from mlserver import MLServer
    from mlserver.rest.app import create_app
    from mlserver.settings import ModelParameters, ModelSettings, Settings

    from mlops_kit.serving.guard import Guard, Limits, install_handlers
    from mlops_kit.serving.server import install

    folder = tmp_path_factory.mktemp("fastlane")
    shutil.copytree(models.row_ids, folder / "model")
    settings = Settings(
        http_port=0, grpc_port=0, metrics_port=0, parallel_workers=0, gzip_enabled=False
    )

    class Quiet(MLServer):
        def _add_signal_handlers(self) -> None:
            """Not in the test process (MLServer would take its SIGINT)."""

    server = Quiet(settings)
    install(server, Limits())
    model = ModelSettings(
        name="wine",
        implementation="mlops_kit.serving.runtime.MLflowRuntime",
        parameters=ModelParameters(uri=str(folder / "model"), version="1"),
    )
    loop = asyncio.new_event_loop()
    loop.run_until_complete(server._model_registry.load(model))
    stock_app = create_app(
        settings, server._data_plane, server._rest_server._model_repository_handlers
    )
    install_handlers(stock_app)
    fast = App(Guard(server._rest_server._app, Limits()), server._data_plane)
    stock = App(Guard(stock_app, Limits()), server._data_plane)
    fast.loop = stock.loop = loop
    yield fast, stock
    loop.run_until_complete(server._model_registry.unload("wine"))
    loop.close()


def _without_ids(headers: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k not in ("ce-id", "ce-requestid")}


def test_the_fast_route_answers_as_mlservers_route(apps: Any, models: Models) -> None:
    fast, stock = apps
    good = encode_dataframe(models.rows(3))
    bad_value = json.loads(json.dumps(good))
    bad_value["inputs"][0]["data"][0] = "1.0"
    requests = [
        json.dumps({**good, "id": "req-1"}).encode(),
        json.dumps({**good, "id": "req-2", "parameters": {"content_type": "pd"}}).encode(),
        json.dumps({**bad_value, "id": "req-3"}).encode(),  # a value that is not a number
        json.dumps({"id": "req-4", "inputs": [{"name": "x"}]}).encode(),  # not an InferenceRequest
        b'{"inputs": [',  # not JSON
        b"",
        b"[]",
    ]
    for body in requests:
        got, want = fast.call(body), stock.call(body)
        assert got[0] == want[0], (body, got, want)
        assert got[2] == want[2], body
        assert _without_ids(got[1]) == _without_ids(want[1]), body
    assert fast.call(requests[0])[0] == 200
    assert fast.call(requests[4])[0] == 422
    # Another model, another version: MLServer's own 404s.
    assert (
        fast.call(requests[0], "/v2/models/nope/infer")[:2]
        == stock.call(requests[0], "/v2/models/nope/infer")[:2]
    )
    versioned = "/v2/models/wine/versions/9/infer"
    assert fast.call(requests[0], versioned) == stock.call(requests[0], versioned)


def test_a_request_without_an_id_gets_a_fresh_uuid(apps: Any, models: Models) -> None:
    fast, _ = apps
    body = json.dumps(encode_dataframe(models.rows(1))).encode()
    ids = set()
    for _ in range(3):
        status, headers, content = fast.call(body)
        assert status == 200
        answer_id = json.loads(content)["id"]
        assert re.fullmatch(
            r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", answer_id
        )
        assert headers["ce-id"] == headers["ce-requestid"] == answer_id
        ids.add(answer_id)
    assert len(ids) == 3
    assert fastlane.request_id() != fastlane.request_id()


# -- the live server: the same metrics -----------------------------------------------------------


def _total(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_the_fast_route_keeps_mlservers_metrics(staging_server: Served, models: Models) -> None:
    record = staging_server.record
    infer_path = "/v2/models/{model_name}/infer"
    body = encode_dataframe(models.rows(2))
    with httpx.Client(timeout=10, trust_env=False) as client:
        before = client.get(record.metrics_url).text
        for _ in range(3):
            assert client.post(f"{staging_server.endpoint}/infer", json=body).status_code == 200
        assert (
            client.post(f"{staging_server.endpoint}/infer", json={"inputs": 1}).status_code == 422
        )
        after = client.get(record.metrics_url).text

    def grew(name: str, **labels: str) -> float:
        return _total(after, name, **labels) - _total(before, name, **labels)

    assert grew("rest_server_requests_total", path=infer_path, status_code="200") == 3
    assert grew("rest_server_requests_total", path=infer_path, status_code="422") == 1
    assert grew("rest_server_request_duration_seconds_count", path=infer_path) == 4
    assert grew("model_infer_request_success_total", model="wine") == 3


def test_install_refuses_an_app_without_mlservers_routes() -> None:
    from fastapi import FastAPI

    with pytest.raises(RuntimeError, match="no route"):
        fastlane.install(FastAPI(), None)

"""Micro-batching in our runtime: the batcher alone, then real MLServer processes under load."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
import numpy as np
import pandas as pd
import pytest
from mlflow.models import infer_signature
from mlserver.codecs.utils import decode_inference_request
from mlserver.errors import MLServerError
from mlserver.settings import ModelParameters, ModelSettings
from mlserver.types import InferenceRequest
from mlserver_mlflow.metadata import to_metadata_tensors

from mlops_kit.deployment import DeploymentSpec
from mlops_kit.serving.batching import Batcher, Columns, batch_key, concat, row_count, split
from mlops_kit.serving.runtime import _batcher_for, decode_columns
from mlops_kit.settings import ServingSettings, Settings
from mlops_kit.targets.local import LocalTarget
from mlops_kit.verify.v2 import decode_outputs, encode_dataframe

if TYPE_CHECKING:
    from tests.support.serving import Models

pytest_plugins = ["tests.support.serving"]


# -- the pure pieces ------------------------------------------------------------------------------


def test_split_cuts_every_output_kind_by_rows() -> None:
    rows = [2, 1, 3]
    pieces = split(np.arange(12).reshape(6, 2), rows)
    assert pieces is not None
    assert [p.tolist() for p in pieces] == [[[0, 1], [2, 3]], [[4, 5]], [[6, 7], [8, 9], [10, 11]]]

    frame = pd.DataFrame({"a": range(6), "b": list("uvwxyz")})
    pieces = split(frame, rows)
    assert pieces is not None
    pd.testing.assert_frame_equal(pieces[2], pd.DataFrame({"a": [3, 4, 5], "b": list("xyz")}))
    assert [list(p.index) for p in pieces] == [[0, 1], [0], [0, 1, 2]]

    series = split(pd.Series([1.5, 2.5, 3.5, 4.5, 5.5, 6.5], name="y"), rows)
    assert series is not None and series[1].tolist() == [3.5] and series[1].name == "y"
    assert split(list("abcdef"), rows) == [["a", "b"], ["c"], ["d", "e", "f"]]

    by_name = split({"label": np.arange(6), "proba": np.ones((6, 3))}, rows)
    assert by_name is not None
    assert by_name[2]["label"].tolist() == [3, 4, 5] and by_name[2]["proba"].shape == (3, 3)


def test_split_refuses_what_is_not_row_wise() -> None:
    assert split(np.arange(5), [2, 2]) is None  # one row too many
    assert split(np.float64(1.0), [1, 1]) is None
    assert split(pd.DataFrame({"a": [1]}), [1, 1]) is None
    assert split({"a": np.arange(4), "b": np.arange(3)}, [2, 2]) is None
    assert split("text", [1]) is None


def test_batch_keys_keep_apart_what_would_change_when_concatenated() -> None:
    f64 = Columns({"a": np.array([1.0]), "b": np.array([2.0])})
    other_f64 = Columns({"a": np.array([3.0, 4.0]), "b": np.array([5.0, 6.0])})
    assert batch_key(f64) == batch_key(other_f64) is not None
    assert batch_key(Columns({"a": np.array([1]), "b": np.array([2.0])})) != batch_key(f64)
    assert batch_key(Columns({"b": np.array([2.0]), "a": np.array([1.0])})) != batch_key(f64)
    assert batch_key(f64, {"threshold": 0.5}) != batch_key(f64)
    assert batch_key(f64, {"threshold": 0.5}) == batch_key(other_f64, {"threshold": 0.5})
    assert batch_key(f64, {"fn": object()}) is None  # parameters that are not plain JSON
    assert batch_key(Columns({"a": np.array([])})) is None  # no rows: predicted alone
    assert batch_key(np.zeros((2, 3))) == batch_key(np.ones((5, 3)))
    assert batch_key(np.zeros((2, 3))) != batch_key(np.zeros((2, 4)))
    assert batch_key(np.float64(1.0)) is None
    assert batch_key(["not", "a", "table"]) is None
    frame = pd.DataFrame({"a": [1.0]})
    assert batch_key(frame) == batch_key(pd.DataFrame({"a": [2.0, 3.0]}))
    assert batch_key(frame) != batch_key(pd.DataFrame({"a": [1]}))


def test_concat_keeps_rows_in_order() -> None:
    parts = [Columns({"a": np.array([1.0, 2.0])}), Columns({"a": np.array([3.0])})]
    merged = concat(parts)
    assert isinstance(merged, Columns) and merged.arrays["a"].tolist() == [1.0, 2.0, 3.0]
    assert row_count(merged) == 3
    frames = [pd.DataFrame({"a": [1, 2]}), pd.DataFrame({"a": [3]})]
    assert concat(frames)["a"].tolist() == [1, 2, 3]
    tensors = [{"x": np.zeros((1, 2))}, {"x": np.ones((2, 2))}]
    assert concat(tensors)["x"].shape == (3, 2)
    assert row_count({"x": np.zeros((3, 2)), "y": np.zeros(3)}) == 3
    assert row_count({"x": np.zeros((3, 2)), "y": np.zeros(2)}) is None


@pytest.mark.filterwarnings("ignore:Hint. Inferred schema contains integer:UserWarning")
def test_columns_decode_exactly_as_mlservers_pandas_codec() -> None:
    frame = pd.DataFrame(
        {
            "f64": [1.5, np.nan, -2.0],
            "f32": np.array([0.25, 1.0, 2.0], dtype="float32"),
            "i64": [1, 2, 3],
            "i32": np.array([4, 5, 6], dtype="int32"),
            "flag": [True, False, True],
        }
    )
    inputs = {tensor.name: tensor for tensor in to_metadata_tensors(infer_signature(frame).inputs)}
    settings = ModelSettings(
        name="m", implementation=Batcher, parameters=ModelParameters(content_type="pd")
    )
    body = encode_dataframe(frame)
    columns = decode_columns(InferenceRequest.model_validate(body), "pd", inputs)
    assert columns is not None
    expected = decode_inference_request(InferenceRequest.model_validate(body), settings, inputs)
    pd.testing.assert_frame_equal(columns.frame(), expected, check_exact=True)
    assert columns.frame().columns.dtype == expected.columns.dtype
    assert list(columns.frame().dtypes) == list(expected.dtypes)

    # Without the request's content type the model's default decides.
    del body["parameters"]
    assert decode_columns(InferenceRequest.model_validate(body), "pd", inputs) is not None
    assert decode_columns(InferenceRequest.model_validate(body), None, inputs) is None

    text = encode_dataframe(pd.DataFrame({"s": ["a", "b"]}))
    assert decode_columns(InferenceRequest.model_validate(text), "pd", inputs) is None


def test_model_settings_configure_the_batcher() -> None:
    def settings(**extra: Any) -> ModelSettings:
        return ModelSettings(
            name="m", implementation=Batcher, parameters=ModelParameters(version="3", extra=extra)
        )

    def predict(data: Any, params: Any = None) -> Any:
        return data

    default = _batcher_for(settings(), predict, "m")
    assert default is not None
    assert (default.max_batch_size, default.max_batch_time) == (64, 0.002)
    assert (ServingSettings().max_batch_size, ServingSettings().max_batch_time) == (64, 0.002)
    chosen = _batcher_for(settings(max_batch_size=8, max_batch_time="0.01"), predict, "m")
    assert chosen is not None and (chosen.max_batch_size, chosen.max_batch_time) == (8, 0.01)
    assert _batcher_for(settings(max_batch_size=1), predict, "m") is None
    with pytest.raises(MLServerError, match="must be numbers"):
        _batcher_for(settings(max_batch_size="many"), predict, "m")


# -- the batcher alone, with a plain function for a model -----------------------------------------


@dataclass
class Doubler:
    """A model that doubles each row, refuses negative numbers and records its calls."""

    calls: list[int] = field(default_factory=list)

    def __call__(self, data: Any, params: dict[str, Any] | None) -> np.ndarray:
        values = np.asarray(data["x"])
        self.calls.append(len(values))
        if (values < 0).any():
            raise ValueError("negative input")
        time.sleep(0.002)  # long enough for others to queue up
        return values * 2


def frame_of(*values: float) -> pd.DataFrame:
    return pd.DataFrame({"x": np.array(values, dtype="float64")})


async def _submit_all(batcher: Batcher, frames: list[pd.DataFrame]) -> list[Any]:
    return await asyncio.gather(*(batcher.submit(f) for f in frames), return_exceptions=True)


def test_concurrent_requests_share_a_predict_and_get_their_own_rows() -> None:
    model = Doubler()
    batcher = Batcher(model, max_batch_size=64, max_batch_time=0.01)
    frames = [frame_of(*range(10 * i, 10 * i + 1 + i % 3)) for i in range(40)]

    async def run() -> list[Any]:
        results = []
        for _ in range(3):  # later rounds wait for the others, having seen several at once
            results = await _submit_all(batcher, frames)
        await batcher.close()
        return results

    results = asyncio.run(run())
    for frame, result in zip(frames, results, strict=True):
        assert isinstance(result, np.ndarray)
        assert result.tolist() == (frame["x"] * 2).tolist()
    assert max(model.calls) > 3 and sum(model.calls) == 3 * sum(map(len, frames))
    assert batcher.batches >= 1 and batcher.fallbacks == 0
    assert all(rows <= 64 for rows in model.calls)


def test_a_failing_batch_is_redone_one_by_one_and_only_the_culprit_fails() -> None:
    model = Doubler()
    seen: list[tuple[int, int, bool]] = []
    batcher = Batcher(
        model,
        max_batch_size=64,
        max_batch_time=0.01,
        on_batch=lambda *args: seen.append(args),
    )
    frames = [frame_of(float(i)) for i in range(10)]
    frames[4] = frame_of(1.0, -1.0)

    async def run() -> list[Any]:
        first = batcher.submit(frame_of(0.0))  # occupies the thread while the rest queue up
        results = await _submit_all(batcher, frames)
        await first
        await batcher.close()
        return results

    results = asyncio.run(run())
    assert isinstance(results[4], ValueError) and str(results[4]) == "negative input"
    for i, result in enumerate(results):
        if i != 4:
            assert isinstance(result, np.ndarray) and result.tolist() == [2.0 * i]
    assert batcher.fallbacks == 1
    assert (10, 11, True) in seen


def test_an_output_that_cannot_be_split_is_predicted_one_by_one() -> None:
    def total(data: Any, params: dict[str, Any] | None) -> float:
        return float(np.asarray(data["x"]).sum())

    batcher = Batcher(total, max_batch_size=64, max_batch_time=0.01)
    frames = [frame_of(float(i), 1.0) for i in range(8)]

    async def run() -> list[Any]:
        await _submit_all(batcher, frames)
        results = await _submit_all(batcher, frames)
        await batcher.close()
        return results

    assert asyncio.run(run()) == [i + 1.0 for i in range(8)]


def test_rows_never_exceed_max_batch_size_and_big_requests_go_alone() -> None:
    model = Doubler()
    batcher = Batcher(model, max_batch_size=4, max_batch_time=0.01)
    frames = [frame_of(1.0, 2.0, 3.0)] * 6 + [frame_of(*range(9))]

    async def run() -> list[Any]:
        results = await _submit_all(batcher, frames)
        await batcher.close()
        return results

    results = asyncio.run(run())
    assert results[-1].tolist() == [2.0 * i for i in range(9)]
    assert all(r.tolist() == [2.0, 4.0, 6.0] for r in results[:-1])
    assert sorted(model.calls) == [3] * 6 + [9]


def test_a_lone_request_does_not_wait_for_company() -> None:
    batcher = Batcher(Doubler(), max_batch_size=64, max_batch_time=1.0)

    async def run() -> list[float]:
        took = []
        for i in range(5):
            began = time.monotonic()
            assert (await batcher.submit(frame_of(float(i)))).tolist() == [2.0 * i]
            took.append(time.monotonic() - began)
        await batcher.close()
        return took

    assert max(asyncio.run(run())) < 0.5


def test_close_finishes_what_was_queued_and_refuses_the_rest() -> None:
    model = Doubler()
    batcher = Batcher(model, max_batch_size=8, max_batch_time=0.05)
    frames = [frame_of(float(i)) for i in range(30)]

    async def run() -> list[Any]:
        pending = asyncio.gather(*(batcher.submit(f) for f in frames))
        await asyncio.sleep(0)  # all are queued, the first is being predicted
        await batcher.close()
        assert pending.done()
        with pytest.raises(RuntimeError, match="closed"):
            await batcher.submit(frame_of(1.0))
        return await pending

    results = asyncio.run(run())
    assert [r.tolist() for r in results] == [[2.0 * i] for i in range(30)]
    assert batcher.closed


# -- real servers ----------------------------------------------------------------------------------

MODEL = "rows"
SOLO = "rows-solo"
BATCH_TIME = 0.05
"""Long enough that a lone request waiting for company would show in its latency."""


@dataclass
class Servers:
    batching: LocalTarget
    solo: LocalTarget
    """Same model, batching turned off (``max_batch_size`` 1)."""
    models: Models

    def spec(self, version: str = "1") -> DeploymentSpec:
        paths = {"1": self.models.row_ids, "2": self.models.row_ids_v2}
        return DeploymentSpec(
            environment="batching", model_name=MODEL, version=version, model_uri=str(paths[version])
        )

    @property
    def url(self) -> str:
        return self.batching.endpoint(MODEL) + "/infer"

    @property
    def solo_url(self) -> str:
        return self.solo.endpoint(SOLO) + "/infer"


def _with_serving(settings: Settings, **changes: Any) -> Settings:
    serving = ServingSettings.model_validate({**settings.serving.model_dump(), **changes})
    return settings.model_copy(update={"serving": serving})


@pytest.fixture(scope="module")
def servers(serving_settings: Settings, models: Models) -> Iterator[Servers]:
    environment = serving_settings.environment("batching")
    batching = LocalTarget(_with_serving(serving_settings, max_batch_time=BATCH_TIME), environment)
    solo = LocalTarget(_with_serving(serving_settings, max_batch_size=1), environment)
    # The solo server is the same model under another name, in the same environment.
    served = Servers(batching, solo, models)
    solo_spec = served.spec().model_copy(update={"model_name": SOLO})
    with ThreadPoolExecutor(2) as pool:
        started = [pool.submit(batching.apply, served.spec()), pool.submit(solo.apply, solo_spec)]
        for future in started:
            assert future.result().ready
    yield served
    batching.delete(MODEL)
    solo.delete(SOLO)
    batching.close()
    solo.close()


Ask = Callable[[httpx.Client, pd.DataFrame], httpx.Response]


def _ask(url: str) -> Ask:
    def ask(client: httpx.Client, rows: pd.DataFrame) -> httpx.Response:
        return client.post(url, json=encode_dataframe(rows))

    return ask


def _burst(clients: int, work: Callable[[int, httpx.Client], Any]) -> list[Any]:
    """Run ``work(i, client)`` in ``clients`` threads released together; their results."""
    start = threading.Barrier(clients)

    def run(i: int) -> Any:
        with httpx.Client(timeout=30, trust_env=False) as client:
            start.wait(timeout=30)
            return work(i, client)

    with ThreadPoolExecutor(clients) as pool:
        return list(pool.map(run, range(clients)))


def _metric(text: str, name: str, model: str = MODEL) -> float:
    found = re.search(
        rf'^{name}\{{[^}}]*model_name="{re.escape(model)}"[^}}]*\}} (\S+)$', text, re.M
    )
    return float(found.group(1)) if found else 0.0


def _metrics(target: LocalTarget, model: str = MODEL) -> str:
    record = target.server(model)
    assert record is not None
    return httpx.get(record.metrics_url, timeout=5, trust_env=False).text


def test_local_target_passes_the_batch_settings_to_the_runtime(servers: Servers) -> None:
    settings_file = servers.batching.root / MODEL / MODEL / "model-settings.json"
    extra = json.loads(settings_file.read_text())["parameters"]["extra"]
    assert extra == {"max_batch_size": 64, "max_batch_time": BATCH_TIME}
    assert "max_batch_size" not in json.loads(settings_file.read_text())  # not MLServer's own


def test_concurrent_clients_get_exactly_their_own_rows(servers: Servers, models: Models) -> None:
    clients, requests = 16, 12
    ask = _ask(servers.url)
    before = _metric(_metrics(servers.batching), "mlops_kit_batch_requests_count")

    def work(i: int, client: httpx.Client) -> list[tuple[list[int], httpx.Response]]:
        mine = list(range(i, len(models.X), clients))  # no two clients share a row
        answers = []
        for n in range(requests):
            take = [mine[(n * 3 + k) % len(mine)] for k in range(1 + n % 3)]
            answers.append((take, ask(client, models.X.iloc[take])))
        return answers

    for answers in _burst(clients, work):
        for rows, response in answers:
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["model_name"] == MODEL and body["model_version"] == "1"
            output = body["outputs"][0]
            assert output["datatype"] == "FP64" and output["shape"][0] == len(rows)
            assert decode_outputs(body).tolist() == [float(r) for r in rows]

    metrics = _metrics(servers.batching)
    assert _metric(metrics, "mlops_kit_batch_requests_count") > before  # batches happened
    assert _metric(metrics, "mlops_kit_batch_requests_sum") > _metric(
        metrics, "mlops_kit_batch_requests_count"
    )


def test_batched_answers_are_the_unbatched_answers(servers: Servers, models: Models) -> None:
    rows = models.rows(3)
    with httpx.Client(timeout=30, trust_env=False) as client:
        alone = client.post(servers.solo_url, json=encode_dataframe(rows))
    batched = _burst(8, lambda i, client: _ask(servers.url)(client, rows))
    expected = alone.json()["outputs"]
    for response in batched:
        assert response.json()["outputs"] == expected


def test_a_bad_request_in_a_burst_fails_alone(servers: Servers, models: Models) -> None:
    ask = _ask(servers.url)
    unreadable = models.X.iloc[[5]].copy()
    unreadable["alcohol"] = 1e308  # valid JSON and schema; the tree's float32 cast overflows
    misnamed = models.X.iloc[[6]].rename(columns={"alcohol": "alcohol_pct"})
    before = _metric(_metrics(servers.batching), "mlops_kit_batch_fallbacks_total")

    def work(i: int, client: httpx.Client) -> tuple[int, httpx.Response]:
        if i == 7:
            return -1, ask(client, unreadable)
        if i == 8:
            return -2, ask(client, misnamed)
        return i, ask(client, models.X.iloc[[i]])

    for _ in range(6):  # bounded: until the unreadable request was caught inside a batch
        for row, response in _burst(16, work):
            if row == -1:
                assert response.status_code == 422, response.text
                assert "rejected the input" in response.json()["error"]
            elif row == -2:
                assert response.status_code == 422
                assert "missing input(s) ['alcohol']" in response.json()["error"]
            else:
                assert response.status_code == 200, response.text
                assert decode_outputs(response.json()).tolist() == [float(row)]
        if _metric(_metrics(servers.batching), "mlops_kit_batch_fallbacks_total") > before:
            break
    else:
        pytest.fail("the unreadable request never shared a batch in six bursts")


def _lone_latencies(url: str, rows: pd.DataFrame, n: int = 25) -> list[float]:
    took = []
    with httpx.Client(timeout=30, trust_env=False) as client:
        for _ in range(n):
            began = time.perf_counter()
            response = client.post(url, json=encode_dataframe(rows))
            took.append(time.perf_counter() - began)
            assert response.status_code == 200
    return took


def test_a_lone_request_does_not_pay_max_batch_time(servers: Servers, models: Models) -> None:
    _burst(16, lambda i, client: _ask(servers.url)(client, models.X.iloc[[i]]))  # company first
    rows = models.rows(1)
    batched = statistics.median(_lone_latencies(servers.url, rows))
    solo = statistics.median(_lone_latencies(servers.solo_url, rows))
    # Waiting for company would add BATCH_TIME (50 ms) to every request.
    assert batched < solo + BATCH_TIME / 2, (batched, solo)


def test_a_version_swap_under_concurrent_load_loses_nothing(
    servers: Servers, models: Models
) -> None:
    ask = _ask(servers.url)
    stop = threading.Event()
    clients = 8

    def work(i: int, client: httpx.Client) -> list[tuple[int, httpx.Response]]:
        answers = []
        for n in itertools.count():
            if stop.is_set() or n >= 1000:
                break
            row = (i + clients * n) % len(models.X)
            answers.append((row, ask(client, models.X.iloc[[row]])))
        return answers

    with ThreadPoolExecutor(1) as pool:
        load = pool.submit(_burst, clients, work)
        time.sleep(0.5)
        swapped = servers.batching.apply(servers.spec("2"))
        time.sleep(0.5)
        stop.set()
        results = load.result(timeout=60)

    assert swapped.ready and swapped.version == "2"
    for answers in results:
        versions = []
        for row, response in answers:
            assert response.status_code == 200, response.text
            body = response.json()
            offset = {"1": 0.0, "2": 1000.0}[body["model_version"]]
            assert decode_outputs(body).tolist() == [row + offset]
            versions.append(body["model_version"])
        assert [v for v, _ in itertools.groupby(versions)] in (["1", "2"], ["2"], ["1"])
    seen = {r.json()["model_version"] for answers in results for _, r in answers}
    assert seen == {"1", "2"}
    assert servers.batching.apply(servers.spec("1")).version == "1"

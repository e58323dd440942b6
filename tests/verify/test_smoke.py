"""Smoke tests against a live MLServer: pass when it answers like the model, fail loudly if not."""

from __future__ import annotations

import socket
import time
from typing import TYPE_CHECKING

import numpy as np
import pytest

from mlops_kit.errors import InferenceFailed, ParameterError, SmokeTestFailed, ToolkitError
from mlops_kit.verify.smoke import SmokeResult, examples_from_model, smoke_test
from mlops_kit.verify.v2 import infer

if TYPE_CHECKING:
    from tests.support.serving import Models, Served

pytest_plugins = ["tests.support.serving"]


def test_examples_come_from_the_models_input_example(models: Models) -> None:
    examples, expected = examples_from_model(str(models.v1))
    assert list(examples.columns) == list(models.X.columns) and len(examples) == 3
    assert expected.tolist() == models.predictions_v1[:3].tolist()
    same, _ = examples_from_model(models.v1.as_uri())
    assert same.equals(examples)


def test_examples_need_a_model(tmp_path) -> None:
    with pytest.raises(ToolkitError, match="could not load the model"):
        examples_from_model(str(tmp_path))


def test_a_live_endpoint_passes(staging_server: Served, models: Models) -> None:
    rows = models.rows(6)
    result = smoke_test(
        staging_server.endpoint,
        "wine",
        rows,
        models.predictions_v1[rows.index],
        expected_version="1",
    )
    assert isinstance(result, SmokeResult)
    assert result.passed and result.failures == []
    assert result.n_requests == 4 and len(result.latency_ms) == 4  # one batch + three rows
    assert result.served_version == "1"
    assert result.endpoint == staging_server.endpoint + "/infer"
    summary = result.latency_summary()
    assert set(summary) == {"min", "p50", "p95", "max", "mean"}
    assert 0 < summary["min"] <= summary["p50"] <= summary["max"]
    assert result.to_dict()["latency_summary"] == summary


def test_a_status_and_the_models_own_example_work_too(
    staging_server: Served, models: Models
) -> None:
    examples, expected = examples_from_model(str(models.v1))
    result = smoke_test(staging_server.status, "wine", examples, expected, single_rows=1)
    assert result.passed and result.n_requests == 2


def test_wrong_predictions_fail_loudly(staging_server: Served, models: Models) -> None:
    rows = models.rows(4)
    wrong = (models.predictions_v1[rows.index] + 1) % 3
    with pytest.raises(SmokeTestFailed) as caught:
        smoke_test(staging_server.endpoint, "wine", rows, wrong, single_rows=2)
    failures = caught.value.failures
    assert len(failures) == 3  # the batch and each single row
    assert failures[0].startswith("batch of 4 rows: 4 prediction(s) differ")
    assert "row 0: got" in failures[0] and failures[1].startswith("row 0:")
    assert caught.value.endpoint == staging_server.endpoint + "/infer"

    result = smoke_test(
        staging_server.endpoint, "wine", rows, wrong, single_rows=0, raise_on_failure=False
    )
    assert not result.passed and len(result.failures) == 1 and result.n_requests == 1


def test_another_served_version_fails(staging_server: Served, models: Models) -> None:
    rows = models.rows(2)
    with pytest.raises(SmokeTestFailed, match="served version is '1', expected '7'"):
        smoke_test(
            staging_server.endpoint,
            "wine",
            rows,
            models.predictions_v1[rows.index],
            expected_version="7",
        )


def test_error_answers_are_reported(staging_server: Served, models: Models) -> None:
    rows = models.rows(2).rename(columns={"alcohol": "alc"})
    result = smoke_test(
        staging_server.endpoint,
        "wine",
        rows,
        np.zeros(2),
        single_rows=0,
        raise_on_failure=False,
    )
    assert result.failures == [
        "batch of 2 rows: HTTP 422: request does not match the input schema of model 'wine': "
        "missing input(s) ['alcohol']; unexpected input(s) ['alc']; the model takes "
        + str(list(models.X.columns))
    ]


def test_a_refused_connection_fails_fast_and_clearly(models: Models) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens once closed
    rows = models.rows(3)
    began = time.monotonic()
    with pytest.raises(SmokeTestFailed) as caught:
        smoke_test(f"http://127.0.0.1:{port}", "wine", rows, models.predictions_v1[rows.index])
    assert time.monotonic() - began < 2
    assert len(caught.value.failures) == 1
    assert caught.value.failures[0].startswith(
        f"batch of 3 rows: cannot connect to http://127.0.0.1:{port}/v2/models/wine/infer"
    )
    with pytest.raises(InferenceFailed, match="ConnectError"):
        infer(f"http://127.0.0.1:{port}", "wine", rows)


def test_mismatched_arguments_are_programming_errors(models: Models) -> None:
    with pytest.raises(ParameterError, match="'expected': 3 examples but 2 expected"):
        smoke_test("http://127.0.0.1:9", "wine", models.rows(3), [0, 1])
    with pytest.raises(ParameterError, match="'examples': a smoke test needs at least one"):
        smoke_test("http://127.0.0.1:9", "wine", models.rows(3).iloc[:0], [])

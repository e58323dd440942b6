"""The routing model's pure parts: the route file, sticky buckets, comparing answers."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("mlserver")

from mlserver.types import InferenceResponse, ResponseOutput  # noqa: E402

from mlops_kit.serving.routing import Route, _bucket, same_answer  # noqa: E402


def answer(data, datatype="INT64") -> InferenceResponse:
    output = ResponseOutput(name="output-1", shape=[len(data), 1], datatype=datatype, data=data)
    return InferenceResponse(model_name="wine", outputs=[output])


def test_answers_compare_by_value_within_float_tolerance():
    assert same_answer(answer([1, 2]), answer([1, 2]))
    assert not same_answer(answer([1, 2]), answer([1, 0]))
    assert same_answer(answer([0.1, 0.2], "FP64"), answer([0.1 + 1e-12, 0.2], "FP64"))
    assert not same_answer(answer([1, 2]), answer([1, 2, 3]))


def test_a_sticky_bucket_is_stable_and_spread():
    buckets = [_bucket(f"user-{i}") for i in range(1000)]
    assert buckets == [_bucket(f"user-{i}") for i in range(1000)]  # same value, same bucket
    below_ten = sum(b < 10 for b in buckets)
    assert 60 < below_ten < 140  # about 10% of callers at weight 10


def test_the_route_file_keeps_only_what_it_knows(tmp_path):
    path = tmp_path / "route.json"
    path.write_text(json.dumps({"weight": 30, "sticky_header": "X-User", "version": "2"}))
    assert Route.read(str(path)) == Route(weight=30, sticky_header="X-User")

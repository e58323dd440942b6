"""Decoding V2 answers: a missing output is a structured toolkit error (and still a ValueError)."""

from __future__ import annotations

import pytest

from mlops_kit.errors import OutputNotFound, ToolkitError
from mlops_kit.verify.v2 import decode_outputs

ANSWER = {"outputs": [{"name": "label", "shape": [2, 1], "datatype": "INT64", "data": [1, 2]}]}


def test_a_missing_output_names_the_ones_there_are() -> None:
    assert decode_outputs(ANSWER).tolist() == [1, 2]
    with pytest.raises(OutputNotFound, match="no output 'proba'; it has \\['label'\\]") as caught:
        decode_outputs(ANSWER, "proba")
    assert caught.value.output == "proba" and caught.value.available == ["label"]
    assert isinstance(caught.value, ToolkitError) and isinstance(caught.value, ValueError)
    with pytest.raises(OutputNotFound, match="the response has no outputs"):
        decode_outputs({"outputs": []}, "label")

"""Examples and predictions of a model are computed once, then read from the cache."""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING

import pandas as pd
import pytest

from mlops_kit.errors import ToolkitError
from mlops_kit.verify.smoke import examples_from_model

if TYPE_CHECKING:
    from pathlib import Path

    from tests.support.serving import Models

pytest_plugins = ["tests.support.serving"]


def test_a_cached_model_needs_no_loading(models: Models, tmp_path: Path) -> None:
    model = tmp_path / "model"
    shutil.copytree(models.v1, model)
    cache = tmp_path / "cache"
    examples, expected = examples_from_model(str(model), cache=cache)
    assert len(list(cache.glob("*.json"))) == 1
    for artifact in model.glob("model.*"):  # the model itself is gone; its MLmodel is not
        artifact.unlink()
    with pytest.raises(ToolkitError, match="could not load the model"):
        examples_from_model(str(model))
    again, again_expected = examples_from_model(model.as_uri(), cache=cache)
    pd.testing.assert_frame_equal(again, examples, check_exact=True)
    assert again_expected.dtype == expected.dtype and again_expected.tolist() == expected.tolist()
    alone, alone_expected = examples_from_model(str(models.v1))
    pd.testing.assert_frame_equal(again, alone, check_exact=True)
    assert again_expected.tolist() == alone_expected.tolist()


def test_another_model_or_a_broken_cache_is_computed_again(models: Models, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    _, first = examples_from_model(str(models.v1), cache=cache)
    _, other = examples_from_model(str(models.v2), cache=cache)  # another MLmodel, another key
    assert len(list(cache.glob("*.json"))) == 2
    assert other.tolist() == [2, 2, 2] and first.tolist() != other.tolist()
    for kept in cache.glob("*.json"):
        kept.write_text("{not json")
    _, again = examples_from_model(str(models.v1), cache=cache)
    assert again.tolist() == first.tolist()

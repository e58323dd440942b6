"""Forests predicted tree by tree give scikit-learn's answers exactly; others keep its path."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_diabetes, load_wine
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    RandomForestClassifier,
    RandomForestRegressor,
)

from mlops_kit.serving.forest import fast_predict


@pytest.mark.parametrize("kind", [RandomForestClassifier, ExtraTreesClassifier])
def test_a_classifier_answers_exactly_as_scikit_learn(kind):
    X, y = load_wine(return_X_y=True, as_frame=True)
    model = kind(n_estimators=30, random_state=0).fit(X, y)
    predict = fast_predict(model)
    assert predict is not None
    for rows in (X.iloc[:1], X.iloc[:25], X):
        np.testing.assert_array_equal(predict(rows), model.predict(rows))


def test_string_classes_are_kept():
    X, y = load_wine(return_X_y=True, as_frame=True)
    labels = np.array(["barolo", "grignolino", "barbera"])[y]
    model = RandomForestClassifier(n_estimators=10, random_state=0).fit(X, labels)
    np.testing.assert_array_equal(fast_predict(model)(X), model.predict(X))


@pytest.mark.parametrize("kind", [RandomForestRegressor, ExtraTreesRegressor])
def test_a_regressor_answers_exactly_as_scikit_learn(kind):
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    model = kind(n_estimators=20, random_state=0).fit(X, y)
    # Bit for bit: the same additions in the same order, then the same division.
    assert fast_predict(model)(X).tobytes() == model.predict(X).tobytes()


def test_a_bad_frame_is_refused_as_scikit_learn_refuses_it():
    X, y = load_wine(return_X_y=True, as_frame=True)
    model = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y)
    with pytest.raises(ValueError):
        fast_predict(model)(X.iloc[:, :5])


def test_other_models_keep_scikit_learns_predict():
    X, y = load_wine(return_X_y=True, as_frame=True)
    assert fast_predict(GradientBoostingClassifier(n_estimators=3).fit(X, y)) is None
    assert fast_predict(RandomForestClassifier(n_estimators=3, n_jobs=2).fit(X, y)) is None

    class Custom(RandomForestClassifier):
        pass

    assert fast_predict(Custom(n_estimators=3).fit(X, y)) is None
    two = np.column_stack([y, y])
    assert fast_predict(RandomForestClassifier(n_estimators=3).fit(X, two)) is None

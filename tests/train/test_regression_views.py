"""Regression in the views: held-out plot, gate chart and verdict say lower is better."""

from mlops_kit.notebook import plots
from mlops_kit.settings import GateSettings
from mlops_kit.train import gates
from mlops_kit.train.builtin import estimator_for
from mlops_kit.train.data import load_dataset


def test_the_held_out_figure_is_predicted_against_true_values_for_regression(wine):
    diabetes = load_dataset("diabetes")
    model = estimator_for("regression", "ridge").fit(diabetes.X_train, diabetes.y_train)
    figure = plots.held_out(model, diabetes)
    assert figure.axes[0].get_xlabel() == "true target"
    classifier = estimator_for("classification", "logistic_regression")
    matrix = plots.held_out(classifier.fit(wine.X_train, wine.y_train), wine)
    assert matrix.axes[0].get_title() == "Held-out confusion matrix"


def test_the_gate_chart_and_verdict_of_an_error_metric():
    rule = GateSettings(metric="rmse", threshold=60.0, max_regression=2.0)
    verdict = gates.decide(rule, ("2", 55.0), ("1", 54.0))
    assert verdict.passed and verdict.direction == "lower"
    assert "Ceiling 60.0000; at most 2.0000 above the champion (lower is better)" in (
        verdict._repr_html_()
    )
    low, high = plots.gate_chart(verdict).axes[0].get_xlim()
    assert low < 54.0 and high > 60.0

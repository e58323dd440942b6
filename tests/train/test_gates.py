import pytest

from mlops_kit.errors import GateFailed, ModelVersionNotFound
from mlops_kit.registry.client import Registry
from mlops_kit.settings import GateSettings
from mlops_kit.train import gates
from mlops_kit.train.training import train_and_register, training_params


def test_aliases_and_champion(registered):
    project, result = registered
    registry = Registry(project)
    assert registry.champion() is None
    registry.set_alias("staging", result.version)
    assert registry.champion().version == "1"
    assert registry.get(1).aliases == ("staging",)
    registry.delete_alias("staging")
    registry.delete_alias("staging")  # idempotent
    assert registry.by_alias("staging") is None
    with pytest.raises(ModelVersionNotFound):
        registry.set_alias("production", 9)
    assert registry.local_path(1).joinpath("MLmodel").is_file()


def test_decide_rules():
    rules = GateSettings(min_value=0.8, max_regression=0.02)
    assert gates.decide(rules, ("2", 0.9), None).passed
    assert gates.decide(rules, ("2", 0.89), ("1", 0.9)).passed
    low = gates.decide(rules, ("2", 0.7), None)
    assert not low.passed and "below the floor" in low.reasons[0]
    regressed = gates.decide(rules, ("2", 0.85), ("1", 0.95))
    assert not regressed.passed and "regressed by 0.1000" in regressed.summary()
    with pytest.raises(GateFailed, match="gate FAILED"):
        regressed.raise_for_failure()


def test_second_version_is_gated_against_the_first(registered, wine):
    project, first = registered
    Registry(project).set_alias("staging", first.version)
    second = train_and_register(project, wine, training_params(n_estimators=20))
    verdict = gates.evaluate_gate(project, second.version, wine)
    assert verdict.passed
    assert (verdict.challenger_version, verdict.champion_version) == ("2", "1")
    assert Registry(project).get(2).tags["mlops.gate.verdict"] == "passed"


def test_failing_gate_is_recorded_and_stops(project, wine):
    project.settings.gates.min_value = 0.99
    weak = train_and_register(
        project, wine, training_params(model_type="random_forest", n_estimators=1, max_depth=1)
    )
    verdict = gates.evaluate_gate(project, weak.version, wine)
    assert not verdict.passed
    tags = Registry(project).get(weak.version).tags
    assert tags["mlops.gate.verdict"] == "failed"
    assert "below the floor" in tags["mlops.gate.detail"]
    with pytest.raises(GateFailed):
        verdict.raise_for_failure()

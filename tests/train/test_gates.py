import pytest

from mlops_kit.errors import GateFailed, ModelVersionNotFound, ParameterError, SchemaMismatch
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


def staging_serves(project, version):
    """Record ``version`` in staging's GitOps path and point the alias at it, as a deploy does."""
    from mlops_kit.gitops.deploy import spec_for
    from mlops_kit.gitops.repository import GitOpsRepo

    repo = GitOpsRepo.from_settings(project.settings)
    repo.ensure()
    repo.write(spec_for(project, "staging", version), actor="tests", message="deploy")
    Registry(project).set_alias("staging", version)


def test_a_hand_moved_alias_is_never_the_champion(registered, wine):
    project, first = registered
    Registry(project).set_alias("production", first.version)  # by hand: GitOps has nothing
    second = train_and_register(project, wine, training_params(n_estimators=20))
    assert gates.evaluate_gate(project, second.version, wine).champion_version is None
    staging_serves(project, first.version)
    assert gates.evaluate_gate(project, second.version, wine).champion_version == "1"


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
    staging_serves(project, first.version)
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


# ---- schema changes ----------------------------------------------------------------------


@pytest.fixture
def wine_champion_then_breast_cancer(registered):
    """v1 on wine under the staging alias; v2 of the same model name on breast_cancer."""
    from mlops_kit.train.training import load_dataset

    project, first = registered
    staging_serves(project, first.version)
    cancer = load_dataset("breast_cancer")
    second = train_and_register(project, cancer, training_params(model_type="logistic_regression"))
    return project, cancer, second


def test_a_challenger_on_other_columns_fails_naming_the_change(wine_champion_then_breast_cancer):
    project, cancer, second = wine_champion_then_breast_cancer
    verdict = gates.evaluate_gate(project, second.version, cancer)
    assert not verdict.passed
    assert (verdict.champion_version, verdict.champion_value) == ("1", None)  # not scored
    change = verdict.schema_change
    assert len(change.added) == 30 and change.added[:2] == ["mean radius", "mean texture"]
    assert len(change.removed) == 13 and change.removed[0] == "alcohol"
    assert change.retyped == []
    summary = verdict.summary()
    assert "\n" not in summary and len(summary) < 400
    assert "the input schema differs from champion v1's: 30 columns added (mean radius, " in summary
    assert "13 columns removed (alcohol, malic_acid, ash, … 10 more)" in summary
    assert "new model_name" in summary and "--reset-champion" in summary
    tags = Registry(project).get(second.version).tags
    assert tags["mlops.gate.verdict"] == "failed"
    assert tags["mlops.gate.schema"] == "changed"
    assert tags["mlops.gate.champion"] == "1"
    assert tags["mlops.gate.detail"] == summary
    with pytest.raises(GateFailed, match="input schema differs"):
        verdict.raise_for_failure()


def test_reset_champion_gates_against_no_champion(wine_champion_then_breast_cancer):
    project, cancer, second = wine_champion_then_breast_cancer
    verdict = gates.evaluate_gate(project, second.version, cancer, reset_champion=True)
    assert verdict.passed and verdict.champion_version is None and verdict.champion_reset
    assert "(champion reset: gated against no champion)" in verdict.summary()
    tags = Registry(project).get(second.version).tags
    assert (tags["mlops.gate.verdict"], tags["mlops.gate.champion"]) == ("passed", "reset")
    assert tags["mlops.gate.schema"] == "not compared"
    with pytest.raises(ParameterError, match="reset_champion"):
        gates.evaluate_gate(project, second.version, cancer, reset_champion="yes")


def test_same_columns_are_compared_as_before(registered, wine):
    project, first = registered
    staging_serves(project, first.version)
    second = train_and_register(project, wine, training_params(n_estimators=10))
    verdict = gates.evaluate_gate(project, second.version, wine)
    assert verdict.schema_change is None and verdict.champion_value is not None
    assert Registry(project).get(second.version).tags["mlops.gate.schema"] == "same"


def test_scoring_data_of_other_columns_names_the_reason_not_the_data(registered):
    from mlops_kit.train.training import load_dataset, score

    project, first = registered
    cancer = load_dataset("breast_cancer")
    with pytest.raises(SchemaMismatch) as caught:
        score(Registry(project).load_model(first.version), cancer.X_test, cancer.y_test)
    message = str(caught.value)
    assert message.startswith("the data does not fit the model's input schema: ")
    assert "Model is missing inputs" in message
    assert "\n" not in message and len(message) <= 400
    assert "mean radius  mean texture" not in message  # the DataFrame's repr

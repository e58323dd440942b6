from pathlib import Path

import pytest

from mlops_kit.errors import ConfigError
from mlops_kit.settings import load_settings


def write(tmp_path: Path, text: str) -> Path:
    """A project file holding ``text`` (plus a model name, which every project file needs)."""
    path = tmp_path / "mlops.yaml"
    path.write_text(text if "model_name" in text else f"model_name: m\n{text}")
    return path


def test_defaults_without_a_project_file():
    settings = load_settings()
    assert settings.state_dir == Path(".mlops")
    assert [e.name for e in settings.environments] == ["staging", "production"]
    assert settings.serving.host == "127.0.0.1"
    assert settings.registry_uri is None


def test_project_file_is_found_in_the_working_directory(tmp_path):
    write(tmp_path, "model_name: iris-model\ntraining: {dataset: iris}\n")
    settings = load_settings()
    assert settings.model_name == "iris-model"
    assert settings.training.dataset == "iris"


def test_environment_variables_override_the_file(tmp_path, monkeypatch):
    path = write(tmp_path, "gates: {min_value: 0.5}\n")
    monkeypatch.setenv("MLOPS_KIT_GATES__MIN_VALUE", "0.75")
    monkeypatch.setenv("MLOPS_KIT_STATE_DIR", str(tmp_path / "elsewhere"))
    settings = load_settings(path)
    assert settings.gates.min_value == 0.75
    assert settings.state_dir == tmp_path / "elsewhere"


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("gates: {min_value: 2}\n", "gates.min_value"),
        ("model_name: Not A Name\n", "model_name"),
        ("training: {dataset: nope}\n", "training.dataset"),
        ("environments: [{name: staging, kind: canary}]\n", "environments.0.kind"),
        ("colour: blue\n", "colour"),
    ],
)
def test_a_bad_value_names_the_field(tmp_path, text, field):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as exc:
        load_settings(path)
    message = str(exc.value)
    assert field in message
    assert "\n" not in message


def test_bad_environment_variable_names_the_field(monkeypatch):
    monkeypatch.setenv("MLOPS_KIT_TRAINING__N_ESTIMATORS", "-3")
    with pytest.raises(ConfigError, match="training.n_estimators"):
        load_settings()


def test_duplicate_environment_names_are_refused(tmp_path):
    path = write(
        tmp_path,
        "environments:\n  - {name: staging, kind: staging}\n"
        "  - {name: staging, kind: production}\n",
    )
    with pytest.raises(ConfigError, match="repeated: staging"):
        load_settings(path)


def test_invalid_yaml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(write(tmp_path, "gates: [unclosed\n"))
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "absent.yaml")
    with pytest.raises(ConfigError, match="mapping"):
        load_settings(write(tmp_path, "- a list\n"))


def test_environment_lookup():
    settings = load_settings()
    assert settings.environment("production").kind == "production"
    assert settings.environment_of_kind("staging").name == "staging"
    with pytest.raises(ConfigError, match="configured: staging, production"):
        settings.environment("qa")


def test_demo_project_file_loads():
    from tests.support import DEMO_CONFIG, REPO

    settings = load_settings(DEMO_CONFIG)
    assert settings.environment("production").approval.approvers == ["alice", "bob"]
    assert settings.project_file == REPO / "mlops.yaml"
    assert settings.state_dir == REPO / ".mlops"


def test_reports_dir_defaults_to_build_notebooks_and_is_resolved_like_state_dir(
    tmp_path, monkeypatch
):
    assert load_settings().reports_dir == Path("build/notebooks")
    path = write(tmp_path, "reports_dir: ~/reports\nstate_dir: ~/state\n")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    settings = load_settings(path)
    assert settings.reports_dir == tmp_path / "home" / "reports"
    assert settings.state_dir == tmp_path / "home" / "state"
    monkeypatch.setenv("MLOPS_KIT_REPORTS_DIR", "out")
    assert load_settings(path).reports_dir == tmp_path / "out"


def test_every_settings_field_has_a_docstring():
    from mlops_kit.settings_docs import settings_schema

    schema = settings_schema()
    for model in [schema, *schema["$defs"].values()]:
        for name, prop in model.get("properties", {}).items():
            assert prop.get("description"), f"{model.get('title')}.{name} has no docstring"


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("environments: []\n", "environments: .*at least one environment"),
        (
            "environments:\n- {name: staging, kind: staging}\n"
            "- {name: prod, kind: production, approval: {approvers: []}}\n"
            "- {name: prod2, kind: production}\n",
            "environments: .*only one production environment is allowed, found prod, prod2",
        ),
        (
            "environments:\n- {name: staging, kind: staging, target: nope}\n"
            "- {name: production, kind: production}\n",
            r"environments\.0\.target: unknown target 'nope' \(known: kubernetes, local",
        ),
        (
            "environments:\n- {name: production, kind: production}\n",
            "environments: .*production: a production environment is reached only by promotion",
        ),
        (
            "environments:\n- {name: staging, kind: staging}\n"
            "- {name: production, kind: production, promotes_from: qa}\n",
            "production.promotes_from: 'qa' is not an environment listed before 'production'",
        ),
    ],
)
def test_bad_environments_are_refused_at_load_naming_the_field(tmp_path, text, error):
    with pytest.raises(ConfigError, match=error):
        load_settings(write(tmp_path, text))


def test_a_project_file_must_name_its_model(tmp_path):
    path = tmp_path / "mlops.yaml"
    path.write_text("training: {dataset: iris}\n")
    with pytest.raises(ConfigError, match="model_name: a project file must name its model"):
        load_settings(path)


def test_each_environment_promotes_from_the_one_before_unless_named(tmp_path):
    text = (
        "environments:\n- {name: staging, kind: staging}\n- {name: qa, kind: staging}\n"
        "- {name: production, kind: production}\n"
    )
    settings = load_settings(write(tmp_path, text))
    assert settings.promotion_source("production").name == "qa"
    assert settings.promotion_source("qa").name == "staging"
    assert settings.promotion_source("staging") is None


def test_a_bad_project_file_exits_2_and_creates_nothing(tmp_path):
    import subprocess
    import sys

    write(tmp_path, "environments:\n- {name: staging, kind: staging, target: nope}\n")
    proc = subprocess.run(
        [sys.executable, "-m", "mlops_kit.cli", "status"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "environments.0.target" in proc.stderr
    assert not (tmp_path / ".mlops").exists()

import re
from pathlib import Path

from mlops_kit import settings_docs
from mlops_kit.settings import Settings
from tests.support import REPO

DOCS = REPO / "docs" / "configuration.md"


def test_committed_reference_is_what_the_settings_render():
    assert DOCS.read_text(encoding="utf-8") == settings_docs.render(), (
        "docs/configuration.md is out of date with mlops_kit/settings.py: run `make docs`"
    )


def test_every_field_of_every_section_is_documented():
    text = settings_docs.render()
    keys = set(re.findall(r"^\| `([^`]+)` \|", text, flags=re.MULTILINE))
    for name, info in Settings.model_fields.items():
        assert name in keys
        assert info.description, f"{name} has no docstring"
        section = info.annotation
        if isinstance(section, type) and hasattr(section, "model_fields"):
            for sub, sub_info in section.model_fields.items():
                assert f"{name}.{sub}" in keys
                assert sub_info.description, f"{name}.{sub} has no docstring"
    assert {"environments[].name", "environments[].approval.four_eyes"} <= keys


def test_a_row_names_type_default_and_variable():
    text = settings_docs.render()
    assert (
        "| `gates.min_value` | number (≥ 0.0, ≤ 1.0) | `0.8` | `MLOPS_KIT_GATES__MIN_VALUE` "
        "| Absolute floor the challenger must reach, for a higher-is-better metric"
    ) in text
    row = "| `training.data.target` | string | `target` | `MLOPS_KIT_TRAINING__DATA__TARGET` |"
    assert row in text
    assert "| `reports_dir` | path | `build/notebooks` | `MLOPS_KIT_REPORTS_DIR` |" in text
    assert "| `environments[].name` | name (lowercase DNS label) | required | — |" in text


def test_rendering_ignores_the_environment_and_the_project_file(tmp_path, monkeypatch):
    before = settings_docs.render()
    monkeypatch.setenv("MLOPS_KIT_GATES__MIN_VALUE", "0.9")
    (tmp_path / "mlops.yaml").write_text("training: {dataset: iris}\n")
    assert settings_docs.render() == before


def test_the_documented_variables_set_the_fields(monkeypatch):
    monkeypatch.setenv("MLOPS_KIT_REPORTS_DIR", "out/reports")
    monkeypatch.setenv("MLOPS_KIT_GATES", '{"min_value": 0.5}')
    monkeypatch.setenv("MLOPS_KIT_SERVING__MAX_BATCH_SIZE", "8")
    settings = Settings()
    assert (settings.reports_dir, settings.gates.min_value) == (Path("out/reports"), 0.5)
    assert settings.serving.max_batch_size == 8


def test_main_writes_the_file(tmp_path):
    assert settings_docs.main([str(tmp_path / "configuration.md")]) == 0
    assert (tmp_path / "configuration.md").read_text(encoding="utf-8") == settings_docs.render()

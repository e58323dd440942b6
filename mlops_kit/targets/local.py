"""The local target: one real MLServer process per (environment, model), on loopback.

Everything lives under ``<state_dir>/serving/<environment>/<model>/``::

    settings.json                   MLServer server settings (ports, no parallel workers)
    <model>/model-settings.json     the model: runtime, artifact path, version, batching
    server.log                      the server's stdout and stderr, appended across restarts
    server.json                     what runs: pid, process group, ports, version, start time

Our runtime micro-batches concurrent requests itself, as ``ServingSettings.max_batch_size`` and
``max_batch_time`` say (in ``parameters.extra``); MLServer's own adaptive batching stays off, as
it fails a whole batch for one bad request.

A new version of a live server is swapped in place through MLServer's repository API
(``POST /v2/repository/models/<name>/load``), which keeps answering throughout: the old
version finishes the requests it holds before it goes. A server that died is started again,
on its recorded ports when they are free.

The ``custom`` flavour runs the user's class (``custom_class``, ``module:Class``) behind
seldon-core's microservice wrapper instead, with the interpreter of its own environment (see
:mod:`mlops_kit.serving.seldon`); it speaks the Seldon protocol at ``/api/v1.0/predictions``.
Its process serves one version, so a new version starts a second process on new ports, and
the record switches to it once it answers before the old one stops. The newcomer is recorded
in ``server.next.json`` meanwhile, so nothing it starts is ever unrecorded.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote, unquote, urlparse

import httpx

from mlops_kit.deployment import DeploymentSpec
from mlops_kit.errors import ConfigError, DeploymentTimeout, TargetError
from mlops_kit.serving import RUNTIME, seldon
from mlops_kit.settings import EnvironmentSettings, ServingSettings, Settings
from mlops_kit.targets.base import DeploymentStatus, DeploymentTarget

logger = logging.getLogger(__name__)

SERVER_FILE = "server.json"
NEXT_SERVER_FILE = "server.next.json"
"""A custom server being started to replace the one in ``server.json``."""
LOG_FILE = "server.log"
SETTINGS_FILE = "settings.json"
MODEL_SETTINGS_FILE = "model-settings.json"
SKLEARN_RUNTIME = "mlserver_sklearn.SKLearnModel"
STOP_GRACE = 10.0
"""Seconds a server gets to stop after SIGTERM before it is killed."""

# ``mlserver`` has no ``__main__``; ``-m mlserver.cli.main`` works but warns about runpy.
_MLSERVER_MAIN = "from mlserver.cli.main import main; main()"
_SKLEARN_FILES = ("model.joblib", "model.pkl", "model.pickle")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_POLL = 0.1
_PROBE_TIMEOUT = 2.0


@dataclass(frozen=True)
class ServerRecord:
    """The contents of ``server.json``: one running (or once running) MLServer process."""

    pid: int
    pgid: int
    host: str
    http_port: int
    grpc_port: int
    metrics_port: int
    version: str | None
    """Version answering; None while the server is starting."""
    model_uri: str
    implementation: str
    started_at: str
    folder: str
    """The server's directory, also its command-line argument: identifies the process."""
    protocol: str = "v2"
    """``v2`` (MLServer, Open Inference Protocol) or ``seldon`` (the custom flavour)."""

    @property
    def base_url(self) -> str:
        """``http://host:port`` of the REST server."""
        return f"http://{_url_host(self.host)}:{self.http_port}"

    @property
    def metrics_url(self) -> str:
        """Prometheus metrics of the server."""
        return f"http://{_url_host(self.host)}:{self.metrics_port}/metrics"

    @classmethod
    def read(cls, path: Path) -> ServerRecord | None:
        """The record at ``path``, or None if there is none (or it is unreadable)."""
        try:
            data = json.loads(path.read_text())
            return cls(**data)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError) as exc:
            logger.warning("ignoring unreadable server record %s: %s", path, exc)
            return None

    def write(self, path: Path) -> None:
        """Write atomically, so a reader never sees half a record."""
        _write_json(path, asdict(self))


class LocalTarget(DeploymentTarget):
    """Serves each model of an environment with its own MLServer process on loopback.

    Servers outlive this object and the Python process that started them; ``delete`` or
    :func:`stop_all` stops them.
    """

    name = "local"

    def __init__(self, settings: Settings, environment: EnvironmentSettings) -> None:
        super().__init__(settings, environment)
        self.root = (settings.state_dir / "serving" / environment.name).absolute()
        self.host = settings.serving.host
        # trust_env=False: loopback requests must not go through a configured proxy.
        self._client = httpx.Client(timeout=_PROBE_TIMEOUT, trust_env=False)
        self._procs: dict[int, subprocess.Popen[bytes]] = {}

    # -- the DeploymentTarget contract -------------------------------------------------------

    def apply(self, spec: DeploymentSpec, *, timeout: float | None = None) -> DeploymentStatus:
        """Start, update in place, restart or leave alone the server of ``spec.model_name``.

        Blocks until ``spec.version`` answers. See :meth:`DeploymentTarget.apply`.
        """
        if spec.environment != self.environment.name:
            raise TargetError(
                f"{spec.key} belongs to environment {spec.environment!r}; this target serves "
                f"{self.environment.name!r}"
            )
        folder = self._folder(spec.model_name)
        if spec.flavour == "custom":
            return self._apply_custom(spec, folder, timeout)
        implementation, uri = _render_model(spec)
        deadline = time.monotonic() + (timeout or self.settings.serving.ready_timeout)
        folder.mkdir(parents=True, exist_ok=True)
        with _locked(folder):
            record = ServerRecord.read(folder / SERVER_FILE)
            if record is not None and record.protocol != "v2":
                # A custom server cannot load an MLServer model: replace it (not without a gap).
                self._stop(record)
                (folder / SERVER_FILE).unlink(missing_ok=True)
                record = None
            if record is not None and self._alive(record):
                unchanged = (record.version, record.model_uri, record.implementation) == (
                    spec.version,
                    uri,
                    implementation,
                )
                if unchanged and self._version_ready(record, spec.model_name, spec.version):
                    return self._status(spec.model_name, record, detail="already serving")
                return self._swap(spec, record, implementation, uri, deadline)
            if record is not None:
                self._stop(record)
            return self._start(spec, implementation, uri, deadline, previous=record)

    def delete(self, model_name: str) -> None:
        """Stop the model's server (SIGTERM, then SIGKILL after a grace period); idempotent."""
        folder = self._folder(model_name)
        if not folder.is_dir():
            return
        with _locked(folder):
            for name in (NEXT_SERVER_FILE, SERVER_FILE):
                record = ServerRecord.read(folder / name)
                if record is not None:
                    self._stop(record)
                    (folder / name).unlink(missing_ok=True)

    def status(self, model_name: str) -> DeploymentStatus | None:
        """Recorded state checked against the live process and its HTTP answers."""
        record = ServerRecord.read(self._folder(model_name) / SERVER_FILE)
        if record is None:
            return None
        return self._status(model_name, record)

    def list(self) -> list[DeploymentStatus]:
        """Status of every model with a server record in this environment, by name."""
        if not self.root.is_dir():
            return []
        found = []
        for server_file in sorted(self.root.glob(f"*/{SERVER_FILE}")):
            status = self.status(server_file.parent.name)
            if status is not None:
                found.append(status)
        return found

    def endpoint(self, model_name: str) -> str:
        """``http://127.0.0.1:PORT/v2/models/NAME``; TargetError if it is not deployed.

        A custom-flavour server answers the Seldon protocol at
        ``http://127.0.0.1:PORT/api/v1.0/predictions`` instead.
        """
        record = self.server(model_name)
        if record is None:
            raise TargetError(
                f"model {model_name!r} is not deployed in environment {self.environment.name!r}"
            )
        return _endpoint(record, model_name)

    def close(self) -> None:
        """Close the HTTP client; servers keep running."""
        self._client.close()

    # -- local extras ------------------------------------------------------------------------

    def server(self, model_name: str) -> ServerRecord | None:
        """The recorded server of ``model_name`` (ports, pid, metrics URL), if any."""
        return ServerRecord.read(self._folder(model_name) / SERVER_FILE)

    def log_path(self, model_name: str) -> Path:
        """Where the server of ``model_name`` logs."""
        return self._folder(model_name) / LOG_FILE

    # -- internals ---------------------------------------------------------------------------

    def _folder(self, model_name: str) -> Path:
        if not _NAME.match(model_name):
            raise TargetError(f"model name {model_name!r} cannot name a local server directory")
        return self.root / model_name

    def _alive(self, record: ServerRecord) -> bool:
        proc = self._procs.get(record.pid)
        if proc is not None:
            return proc.poll() is None
        return _process_alive(record.pid, record.folder)

    def _get_ok(self, url: str) -> bool:
        try:
            return self._client.get(url).status_code == 200
        except httpx.HTTPError:
            return False

    def _version_ready(self, record: ServerRecord, model_name: str, version: str) -> bool:
        return self._get_ok(_version_url(record, model_name, version) + "/ready")

    def _status(self, model_name: str, record: ServerRecord, detail: str = "") -> DeploymentStatus:
        def status(version: str | None, ready: bool, detail: str) -> DeploymentStatus:
            return DeploymentStatus(
                environment=self.environment.name,
                model_name=model_name,
                version=version,
                ready=ready,
                endpoint=_endpoint(record, model_name),
                detail=detail,
                pid=record.pid,
            )

        log = self._folder(model_name) / LOG_FILE
        if not self._alive(record):
            return status(None, False, f"server process {record.pid} is not running; see {log}")
        if record.version is None:
            return status(None, False, "server is starting")
        if record.protocol == "seldon":
            # One process serves one version: answering is being ready.
            if self._get_ok(record.base_url + seldon.HEALTH_PATH):
                return status(record.version, True, detail)
            return status(None, False, f"server process {record.pid} does not answer HTTP")
        if self._version_ready(record, model_name, record.version):
            return status(record.version, True, detail)
        if not self._get_ok(f"{record.base_url}/v2/health/live"):
            return status(None, False, f"server process {record.pid} does not answer HTTP")
        return status(None, False, f"version {record.version} is not loaded; see {log}")

    def _start(
        self,
        spec: DeploymentSpec,
        implementation: str,
        uri: str,
        deadline: float,
        previous: ServerRecord | None,
    ) -> DeploymentStatus:
        folder = self._folder(spec.model_name)
        _write_model_settings(folder, spec, implementation, uri, self.settings.serving)
        ports = None
        if previous is not None:
            recorded = (previous.http_port, previous.grpc_port, previous.metrics_port)
            if all(_port_free(self.host, port) for port in recorded):
                ports = recorded
        began = time.monotonic()
        record = self._until_ready(
            spec,
            SERVER_FILE,
            ports,
            launch=lambda p: self._launch(folder, spec, implementation, uri, *p),
            wait=lambda r: self._wait_started(r, spec, deadline),
            count=3,
        )
        took = time.monotonic() - began
        logger.info("%s: version %s ready in %.1f s", spec.key, spec.version, took)
        return self._status(spec.model_name, record, detail=f"started in {took:.1f} s")

    def _until_ready(
        self,
        spec: DeploymentSpec,
        record_file: str,
        ports: tuple[int, ...] | None,
        *,
        launch: Callable[[tuple[int, ...]], ServerRecord],
        wait: Callable[[ServerRecord], None],
        count: int,
    ) -> ServerRecord:
        """Launch on ``ports`` (else free ones), record it and wait until it answers.

        A port taken between choosing and binding gets one retry on fresh ports; any failure
        stops the process and drops its record.
        """
        folder = self._folder(spec.model_name)
        for attempt in range(2):
            record = launch(ports or _free_ports(self.host, count))
            record.write(folder / record_file)
            try:
                wait(record)
            except TargetError as exc:
                self._stop(record)
                (folder / record_file).unlink(missing_ok=True)
                port_taken = "address already in use" in str(exc).lower()
                if port_taken and attempt == 0 and not isinstance(exc, DeploymentTimeout):
                    ports = None
                    continue
                raise
            except BaseException:
                self._stop(record)
                (folder / record_file).unlink(missing_ok=True)
                raise
            record = replace(record, version=spec.version)
            record.write(folder / record_file)
            return record
        raise AssertionError("unreachable")  # pragma: no cover

    def _spawn(
        self, folder: Path, what: str, command: Sequence[str], *, cwd: Path, env: dict[str, str]
    ) -> subprocess.Popen[bytes]:
        """Start ``command`` in a session of its own, appending its output to the log."""
        with open(folder / LOG_FILE, "ab") as log:
            stamp = datetime.now(UTC).isoformat(timespec="seconds")
            log.write(f"--- mlops-kit {stamp}: starting {what}\n".encode())
            log.flush()
            proc = subprocess.Popen(  # noqa: S603 - our interpreter (or the configured one)
                command,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._procs[proc.pid] = proc
        return proc

    def _launch(
        self,
        folder: Path,
        spec: DeploymentSpec,
        implementation: str,
        uri: str,
        http_port: int,
        grpc_port: int,
        metrics_port: int,
    ) -> ServerRecord:
        _write_json(
            folder / SETTINGS_FILE,
            {
                "server_name": "mlops-kit",
                "debug": False,
                "host": self.host,
                "http_port": http_port,
                "grpc_port": grpc_port,
                "metrics_port": metrics_port,
                "metrics_endpoint": "/metrics",
                # uvloop >= 0.22 crashes MLServer's worker processes (MLServer #2286), and
                # in-process inference measured fastest anyway.
                "parallel_workers": 0,
                # On loopback compression buys nothing, and MLServer's GZip middleware costs
                # 10-25% more CPU per request to every client sending Accept-Encoding: gzip
                # (httpx, requests, locust), even for answers too small to compress.
                "gzip_enabled": False,
                "load_models_at_startup": True,
                "metrics_dir": str(folder / ".metrics"),
                "environments_dir": str(folder / ".envs"),
            },
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLSERVER_")}
        # MLflow 3 refuses to unpickle (or skops-load) models unless told the source is trusted;
        # the local target only serves the project's own registered models.
        env["MLFLOW_ALLOW_PICKLE_DESERIALIZATION"] = "true"
        env["PYTHONUNBUFFERED"] = "1"
        proc = self._spawn(
            folder,
            f"MLServer for {spec.key} version {spec.version} on {self.host}:{http_port}",
            [sys.executable, "-c", _MLSERVER_MAIN, "start", str(folder)],
            cwd=folder,
            env=env,
        )
        record = ServerRecord(
            pid=proc.pid,
            pgid=proc.pid,
            host=self.host,
            http_port=http_port,
            grpc_port=grpc_port,
            metrics_port=metrics_port,
            version=None,
            model_uri=uri,
            implementation=implementation,
            started_at=datetime.now(UTC).isoformat(timespec="milliseconds"),
            folder=str(folder),
        )
        record.write(folder / SERVER_FILE)
        return record

    def _wait_started(self, record: ServerRecord, spec: DeploymentSpec, deadline: float) -> None:
        log = Path(record.folder) / LOG_FILE
        health = f"{record.base_url}/v2/health/ready"
        while True:
            if not self._alive(record):
                proc = self._procs.get(record.pid)
                code = f" with code {proc.returncode}" if proc is not None else ""
                raise TargetError(
                    f"MLServer for {spec.key} exited{code} while starting; last lines of "
                    f"{log}:\n{_tail(log)}"
                )
            if self._get_ok(health) and self._version_ready(record, spec.model_name, spec.version):
                return
            if time.monotonic() > deadline:
                raise DeploymentTimeout(
                    f"MLServer for {spec.key} version {spec.version} was not ready in time; "
                    f"last lines of {log}:\n{_tail(log)}"
                )
            time.sleep(_POLL)

    def _swap(
        self,
        spec: DeploymentSpec,
        record: ServerRecord,
        implementation: str,
        uri: str,
        deadline: float,
    ) -> DeploymentStatus:
        folder = self._folder(spec.model_name)
        settings_path = folder / spec.model_name / MODEL_SETTINGS_FILE
        old_settings = settings_path.read_text() if settings_path.exists() else None
        _write_model_settings(folder, spec, implementation, uri, self.settings.serving)
        load_url = f"{record.base_url}/v2/repository/models/{quote(spec.model_name, safe='')}/load"
        began = time.monotonic()
        try:
            response = self._client.post(load_url, timeout=max(deadline - began, 1.0))
        except httpx.TimeoutException:
            self._restore(settings_path, old_settings)
            raise DeploymentTimeout(
                f"MLServer for {spec.key} did not load version {spec.version} in time; last "
                f"lines of {folder / LOG_FILE}:\n{_tail(folder / LOG_FILE)}"
            ) from None
        except httpx.TransportError:
            # The process is alive but not answering: replace it.
            logger.warning("%s: server %d does not answer; restarting it", spec.key, record.pid)
            self._stop(record)
            return self._start(spec, implementation, uri, deadline, previous=None)
        if response.status_code != 200:
            self._restore(settings_path, old_settings)
            raise TargetError(
                f"MLServer for {spec.key} could not load version {spec.version} "
                f"(HTTP {response.status_code}: {_error_text(response)}); version "
                f"{record.version} is still served. Last lines of {folder / LOG_FILE}:\n"
                f"{_tail(folder / LOG_FILE)}"
            )
        while not self._version_ready(record, spec.model_name, spec.version):
            if time.monotonic() > deadline:
                raise DeploymentTimeout(
                    f"version {spec.version} of {spec.key} was loaded but does not answer"
                )
            time.sleep(_POLL)
        previous = record.version
        record = replace(record, version=spec.version, model_uri=uri, implementation=implementation)
        record.write(folder / SERVER_FILE)
        took = time.monotonic() - began
        logger.info(
            "%s: swapped version %s -> %s in %.2f s", spec.key, previous, spec.version, took
        )
        return self._status(
            spec.model_name, record, detail=f"updated from version {previous} in {took:.2f} s"
        )

    @staticmethod
    def _restore(path: Path, text: str | None) -> None:
        if text is not None:
            _write_text(path, text)

    def _stop(self, record: ServerRecord) -> None:
        if record.protocol == "seldon":
            self._drain_custom(record)
        _terminate([record], procs=self._procs)

    def _drain_custom(self, record: ServerRecord, grace: float = STOP_GRACE) -> None:
        """Let the wrapper's REST server finish its requests before the group is signalled.

        The wrapper's workers report metrics to a multiprocessing manager in the same process
        group: signalling the group at once kills the manager under a request in flight (HTTP
        500, "Broken pipe"). Its REST gunicorn runs in the leader, so SIGTERM the leader alone
        first and wait for that gunicorn to say it has shut down.
        """
        proc = self._procs.get(record.pid)
        alive = (
            proc.poll() is None if proc is not None else _process_alive(record.pid, record.folder)
        )
        if not alive:
            return
        log = Path(record.folder) / LOG_FILE
        try:
            offset = log.stat().st_size
        except OSError:
            offset = 0
        with contextlib.suppress(ProcessLookupError):
            os.kill(record.pid, signal.SIGTERM)
        done = f"[{record.pid}] [INFO] Shutting down: Master".encode()
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            try:
                with open(log, "rb") as handle:
                    handle.seek(offset)
                    if done in handle.read():
                        return
            except OSError:
                return
            if not self._alive(record):
                return
            time.sleep(0.05)
        logger.warning("custom server %d did not drain in %.0f s", record.pid, grace)

    # -- the custom flavour: a user's class behind seldon-core's wrapper -----------------------

    def _apply_custom(
        self, spec: DeploymentSpec, folder: Path, timeout: float | None
    ) -> DeploymentStatus:
        custom = self._custom_server(spec)
        deadline = time.monotonic() + (timeout or self.settings.serving.ready_timeout)
        folder.mkdir(parents=True, exist_ok=True)
        with _locked(folder):
            stale = ServerRecord.read(folder / NEXT_SERVER_FILE)
            if stale is not None:  # a replacement whose deploy was interrupted
                self._stop(stale)
                (folder / NEXT_SERVER_FILE).unlink(missing_ok=True)
            record = ServerRecord.read(folder / SERVER_FILE)
            if record is not None and self._alive(record):
                unchanged = (record.version, record.model_uri, record.implementation) == (
                    spec.version,
                    custom.uri,
                    custom.implementation,
                )
                if unchanged and record.protocol == "seldon":
                    status = self._status(spec.model_name, record, detail="already serving")
                    if status.ready:
                        return status
                return self._replace_custom(spec, custom, record, deadline)
            if record is not None:
                self._stop(record)
            reuse = record if record is not None and record.protocol == "seldon" else None
            began = time.monotonic()
            record = self._run_custom(spec, custom, deadline, SERVER_FILE, previous=reuse)
            took = time.monotonic() - began
            logger.info("%s: version %s ready in %.1f s", spec.key, spec.version, took)
            return self._status(spec.model_name, record, detail=f"started in {took:.1f} s")

    def _custom_server(self, spec: DeploymentSpec) -> _CustomServer:
        serving = self.settings.serving
        custom_class = spec.custom_class or serving.custom_class
        if not custom_class:
            raise TargetError(
                f"flavour 'custom' is not supported by the local target yet without a class for "
                f"{spec.key}: set custom_class ('module:Class') on the deployment or in "
                "serving.custom_class"
            )
        try:
            interface = seldon.interface_name(custom_class)
        except ConfigError as exc:
            raise TargetError(str(exc)) from None
        code_dir = serving.custom_code_dir.expanduser().absolute()
        if seldon.module_file(code_dir, custom_class) is None:
            module = custom_class.partition(":")[0]
            raise TargetError(
                f"module {module!r} of custom_class {custom_class!r} is not in {code_dir} "
                "(serving.custom_code_dir)"
            )
        uri = str(_local_path(spec.model_uri))
        python = seldon.seldon_python(serving.seldon_python, self.settings.state_dir)
        return _CustomServer(
            python=str(python),
            interface=interface,
            implementation=f"seldon:{interface}",
            code_dir=str(code_dir),
            uri=uri,
        )

    def _replace_custom(
        self, spec: DeploymentSpec, custom: _CustomServer, old: ServerRecord, deadline: float
    ) -> DeploymentStatus:
        """Start the new version beside the old, switch the record once it answers, stop the old."""
        folder = self._folder(spec.model_name)
        began = time.monotonic()
        record = self._run_custom(spec, custom, deadline, NEXT_SERVER_FILE, previous=None)
        record.write(folder / SERVER_FILE)
        (folder / NEXT_SERVER_FILE).unlink(missing_ok=True)
        self._stop(old)
        took = time.monotonic() - began
        logger.info(
            "%s: replaced version %s -> %s in %.1f s", spec.key, old.version, spec.version, took
        )
        return self._status(
            spec.model_name, record, detail=f"replaced version {old.version} in {took:.1f} s"
        )

    def _run_custom(
        self,
        spec: DeploymentSpec,
        custom: _CustomServer,
        deadline: float,
        record_file: str,
        previous: ServerRecord | None,
    ) -> ServerRecord:
        """Launch, record in ``record_file`` and wait until it answers; cleans up on failure."""
        folder = self._folder(spec.model_name)
        ports = None
        if previous is not None:
            recorded = (previous.http_port, previous.metrics_port)
            if all(_port_free(self.host, port) for port in recorded):
                ports = recorded
        return self._until_ready(
            spec,
            record_file,
            ports,
            launch=lambda p: self._launch_custom(folder, spec, custom, *p),
            wait=lambda r: self._wait_answering(r, spec, deadline),
            count=2,
        )

    def _launch_custom(
        self,
        folder: Path,
        spec: DeploymentSpec,
        custom: _CustomServer,
        http_port: int,
        metrics_port: int,
    ) -> ServerRecord:
        parameters = [{"name": "model_uri", "value": custom.uri, "type": "STRING"}]
        command = [
            custom.python,
            "-c",
            seldon.BOOTSTRAP,
            str(folder),
            self.host,
            spec.version,
            custom.interface,
            "--service-type",
            "MODEL",
            "--http-port",
            str(http_port),
            "--metrics-port",
            str(metrics_port),
            "--grpc-workers",
            "0",  # no gRPC server: it could only bind 0.0.0.0
            "--parameters",
            json.dumps(parameters),
        ]
        # The wrapper reads its own settings from these variables: ours must not leak in.
        prefixes = (
            "MLSERVER_",
            "PREDICTIVE_UNIT_",
            "SELDON_",
            "GUNICORN_",
            "PYTHON",
            "VIRTUAL_ENV",
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
        env.update(
            PYTHONPATH=custom.code_dir,
            PYTHONUNBUFFERED="1",
            PYTHONDONTWRITEBYTECODE="1",  # write nothing into the user's code directory
            MODEL_URI=custom.uri,
            MODEL_NAME=spec.model_name,
            MODEL_VERSION=spec.version,
        )
        proc = self._spawn(
            folder,
            f"seldon-core wrapper ({custom.interface}) for {spec.key} version {spec.version} "
            f"on {self.host}:{http_port}",
            command,
            cwd=Path(custom.code_dir),
            env=env,
        )
        return ServerRecord(
            pid=proc.pid,
            pgid=proc.pid,
            host=self.host,
            http_port=http_port,
            grpc_port=0,
            metrics_port=metrics_port,
            version=None,
            model_uri=custom.uri,
            implementation=custom.implementation,
            started_at=datetime.now(UTC).isoformat(timespec="milliseconds"),
            folder=str(folder),
            protocol="seldon",
        )

    def _wait_answering(self, record: ServerRecord, spec: DeploymentSpec, deadline: float) -> None:
        log = Path(record.folder) / LOG_FILE
        health = record.base_url + seldon.HEALTH_PATH
        while True:
            if not self._alive(record):
                proc = self._procs.get(record.pid)
                code = f" with code {proc.returncode}" if proc is not None else ""
                raise TargetError(
                    f"the custom server for {spec.key} exited{code} while starting; last lines "
                    f"of {log}:\n{_tail(log)}"
                )
            if self._get_ok(health):
                return
            if time.monotonic() > deadline:
                raise DeploymentTimeout(
                    f"the custom server for {spec.key} version {spec.version} was not ready in "
                    f"time; last lines of {log}:\n{_tail(log)}"
                )
            time.sleep(_POLL)


@dataclass(frozen=True)
class _CustomServer:
    """How to start the custom server of one deployment."""

    python: str
    interface: str
    """seldon-core's ``module.Class``."""
    implementation: str
    code_dir: str
    uri: str


def stop_all(state_dir: Path | str, environment: str | None = None) -> list[str]:
    """Stop every local server under ``state_dir`` (or only ``environment``'s) and wait.

    Signals all servers at once, kills those still running after the grace period, removes
    their ``server.json`` and returns the ``environment/model`` keys that were running.
    Leaves no process behind; safe to call when nothing runs.
    """
    root = Path(state_dir).absolute() / "serving"
    found: list[tuple[Path, ServerRecord]] = []
    for name in (SERVER_FILE, NEXT_SERVER_FILE):
        pattern = f"{environment}/*/{name}" if environment else f"*/*/{name}"
        for server_file in sorted(root.glob(pattern)):
            record = ServerRecord.read(server_file)
            if record is not None:
                found.append((server_file, record))
    stopped = sorted(
        {
            f"{path.parent.parent.name}/{path.parent.name}"
            for path, record in found
            if _process_alive(record.pid, record.folder)
        }
    )
    _terminate([record for _, record in found])
    for path, _ in found:
        path.unlink(missing_ok=True)
    scope = root / environment if environment else root
    orphans = _unrecorded_servers(scope)
    _kill_groups(orphans)
    return stopped + [f"unrecorded server {pid}" for pid in orphans]


def _unrecorded_servers(scope: Path) -> list[int]:
    """Group leaders still serving from under ``scope`` that no record names any more.

    They are left behind when a state directory is deleted while its servers run; the
    folder stays in their command line.
    """
    marker = f"{scope}/".encode()
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            pid = int(entry.name)
            cmdline = (entry / "cmdline").read_bytes()
            if marker in cmdline and b"mlserver" in cmdline and os.getpgid(pid) == pid:
                found.append(pid)
        except (OSError, ValueError):
            continue
    return sorted(found)


def _kill_groups(pgids: list[int], grace: float = STOP_GRACE) -> None:
    """SIGTERM each process group, SIGKILL what is left after ``grace``."""
    for pgid in pgids:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while pgids and time.monotonic() < deadline:
        pgids = [g for g in pgids if _group_exists(g)]
        time.sleep(0.1)
    for pgid in pgids:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)


def _group_exists(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(ChildProcessError):
        os.waitpid(-pgid, os.WNOHANG)
    return True


# -- helpers -------------------------------------------------------------------------------


def _render_model(spec: DeploymentSpec) -> tuple[str, str]:
    """``(implementation, artifact path)`` for the spec's flavour."""
    path = _local_path(spec.model_uri)
    if spec.flavour == "mlflow":
        if not (path / "MLmodel").is_file():
            raise TargetError(f"{path} is not an MLflow model directory (it has no MLmodel file)")
        return RUNTIME, str(path)
    if spec.flavour == "sklearn":
        if path.is_file():
            return SKLEARN_RUNTIME, str(path)
        for filename in _SKLEARN_FILES:
            if (path / filename).is_file():
                return SKLEARN_RUNTIME, str(path / filename)
        hint = ""
        if (path / "model.skops").is_file():
            hint = (
                " (the model is saved in the skops format, which mlserver-sklearn cannot read: "
                "serve it with flavour 'mlflow', or save it with serialization_format='pickle')"
            )
        raise TargetError(f"no {'/'.join(_SKLEARN_FILES)} in {path}{hint}")
    raise TargetError(f"flavour {spec.flavour!r} is not supported by the local target yet")


def _local_path(uri: str) -> Path:
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise TargetError(f"{uri} names another host; the local target serves local paths")
        path = Path(unquote(parsed.path))
    elif parsed.scheme and len(parsed.scheme) > 1:  # one letter: a Windows drive
        raise TargetError(
            f"the local target serves models from local paths or file:// URIs, not {uri}; "
            "download the artifacts first"
        )
    else:
        path = Path(uri).expanduser()
    path = path.absolute()
    if not path.exists():
        raise TargetError(f"model artifacts not found at {path}")
    return path


def _write_model_settings(
    folder: Path, spec: DeploymentSpec, implementation: str, uri: str, serving: ServingSettings
) -> None:
    parameters: dict[str, object] = {"uri": uri, "version": spec.version}
    if implementation == RUNTIME:
        # Our runtime batches by itself, keeping bad requests out of batches; MLServer's own
        # adaptive batching (max_batch_size at the top level) would fail a whole batch for one.
        parameters["extra"] = {
            "max_batch_size": serving.max_batch_size,
            "max_batch_time": serving.max_batch_time,
        }
    _write_json(
        folder / spec.model_name / MODEL_SETTINGS_FILE,
        {"name": spec.model_name, "implementation": implementation, "parameters": parameters},
    )


def _write_json(path: Path, data: object) -> None:
    _write_text(path, json.dumps(data, indent=2) + "\n")


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """Serialise changes to one server between threads and processes."""
    with open(folder / ".lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", ""):  # noqa: S104 - mapping a wildcard bind to a dialable address
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def _endpoint(record: ServerRecord, model_name: str) -> str:
    if record.protocol == "seldon":
        return f"{record.base_url}{seldon.PREDICT_PATH}"
    return f"{record.base_url}/v2/models/{quote(model_name, safe='')}"


def _version_url(record: ServerRecord, model_name: str, version: str) -> str:
    return f"{_endpoint(record, model_name)}/versions/{quote(version, safe='')}"


def _free_ports(host: str, count: int) -> tuple[int, ...]:
    """``count`` distinct ports free on ``host`` right now (held open together while chosen)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    socks = [socket.socket(family, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in socks:
            sock.bind((host, 0))
        return tuple(sock.getsockname()[1] for sock in socks)
    finally:
        for sock in socks:
            sock.close()


def _port_free(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _tail(path: Path, lines: int = 25) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(handle.tell() - 16384, 0))
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def _error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:500]
    if isinstance(body, dict) and "error" in body:
        return str(body["error"])
    return json.dumps(body)[:500]


def _reap(pid: int) -> None:
    """Collect ``pid`` if it is an exited child of ours, so it stops counting as alive."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _process_alive(pid: int, folder: str) -> bool:
    """Is ``pid`` running, and is it the MLServer started for ``folder`` (not a reused pid)?"""
    _reap(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False  # someone else's process: the pid was reused
    proc = Path(f"/proc/{pid}")
    if not proc.is_dir():
        return True  # no procfs to look closer with
    try:
        stat = (proc / "stat").read_text()
        if stat[stat.rindex(")") + 2] in "ZX":
            return False
        args = (proc / "cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError, IndexError):
        return False
    return folder.encode() in args


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _terminate(
    records: list[ServerRecord],
    *,
    procs: dict[int, subprocess.Popen[bytes]] | None = None,
    grace: float = STOP_GRACE,
) -> None:
    """SIGTERM each server's process group, SIGKILL what remains after ``grace``, and wait."""
    procs = procs if procs is not None else {}
    signalled: list[tuple[ServerRecord, subprocess.Popen[bytes] | None]] = []
    for record in records:
        proc = procs.pop(record.pid, None)
        # Signal a group only while its leader is provably ours: pids and pgids get reused.
        ours = (
            proc.poll() is None if proc is not None else _process_alive(record.pid, record.folder)
        )
        if ours:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(record.pgid, signal.SIGTERM)
            signalled.append((record, proc))
    pending = _wait_groups(signalled, grace)
    for record, _ in pending:
        logger.warning("server %d did not stop in %.0f s; killing it", record.pid, grace)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(record.pgid, signal.SIGKILL)
    if _wait_groups(pending, 5.0):
        pids = ", ".join(str(record.pid) for record, _ in pending)
        raise TargetError(f"could not stop server process group(s) {pids}")


def _wait_groups(
    groups: list[tuple[ServerRecord, subprocess.Popen[bytes] | None]], timeout: float
) -> list[tuple[ServerRecord, subprocess.Popen[bytes] | None]]:
    """Wait until every group has no process left; returns those that still have some."""
    deadline = time.monotonic() + timeout
    pending = list(groups)
    while pending:
        still = []
        for record, proc in pending:
            if proc is not None:
                proc.poll()  # reaps our child, which otherwise lingers as a zombie
            else:
                _reap(record.pid)
            if _group_alive(record.pgid):
                still.append((record, proc))
        pending = still
        if not pending or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    return pending

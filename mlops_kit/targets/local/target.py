"""LocalTarget: one real MLServer (or seldon wrapper) process per (environment, model)."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

import httpx

from mlops_kit import artifacts
from mlops_kit.deployment import DeploymentSpec
from mlops_kit.errors import DeploymentTimeout, ProcessExited, TargetError, WaitTimeout
from mlops_kit.process import (
    free_ports,
    locked,
    log_tail,
    port_free,
    port_holder,
    wait_ready,
    wait_until,
)
from mlops_kit.process import write_text as _write_text
from mlops_kit.serving import seldon
from mlops_kit.settings import EnvironmentSettings, Settings
from mlops_kit.targets.base import Capabilities, DeploymentStatus, DeploymentTarget
from mlops_kit.targets.local import custom, mlserver, routing
from mlops_kit.targets.local.records import (
    LOG_FILE,
    MODEL_SETTINGS_FILE,
    NEXT_SERVER_FILE,
    SERVER_FILE,
    ServerRecord,
    alive,
    dead_detail,
    endpoint,
    remove_record,
    stop_all,
    stop_records,
    version_url,
)

if TYPE_CHECKING:
    from mlops_kit.project import Project

logger = logging.getLogger(__name__)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_POLL = 0.1
_PROBE_TIMEOUT = 2.0


class LocalTarget(DeploymentTarget):
    """Serves each model of an environment with its own MLServer process on loopback.

    Servers outlive this object and the Python process that started them; ``delete`` or
    :func:`~mlops_kit.targets.local.stop_all` stops them.
    """

    name = "local"
    capabilities = Capabilities(
        flavours=frozenset({"mlflow", "sklearn", "custom"}),
        min_replicas=1,
        max_replicas=1,
        traffic_split=False,
        preview=True,
        sticky_routing=True,
    )

    @classmethod
    def teardown(cls, project: Project, environments: list[EnvironmentSettings]) -> list[str]:
        """Stop the environments' servers (what ``mlops-kit down ENV`` does)."""
        return [key for env in environments for key in stop_all(project.state_dir, env.name)]

    def __init__(self, settings: Settings, environment: EnvironmentSettings) -> None:
        super().__init__(settings, environment)
        self.root = (settings.state_dir / "serving" / environment.name).absolute()
        self.host = settings.serving.host
        # trust_env=False: loopback requests must not go through a configured proxy. The
        # token opens MLServer's model-repository API (load, unload) to the toolkit alone.
        self._token = mlserver.control_token(settings.state_dir)
        auth = {"Authorization": f"Bearer {self._token}"}
        self._client = httpx.Client(timeout=_PROBE_TIMEOUT, trust_env=False, headers=auth)

    # -- the DeploymentTarget contract -------------------------------------------------------

    def _apply(self, spec: DeploymentSpec, *, timeout: float | None) -> DeploymentStatus:
        """Start, update in place, restart or leave alone the server of ``spec.model_name``.

        Blocks until ``spec.version`` answers.
        """
        folder = self._folder(spec.model_name)
        if spec.flavour == "custom":
            return self._apply_custom(spec, folder, timeout)
        cache = artifacts.cache_dir(self.settings.state_dir)  # where s3:// models are copied
        implementation, uri = mlserver.render_model(spec, cache)
        deadline = time.monotonic() + (timeout or self.settings.serving.ready_timeout)
        folder.mkdir(parents=True, exist_ok=True)
        with locked(folder / ".lock"):
            record = ServerRecord.read(folder / SERVER_FILE)
            if record is not None and record.protocol != "v2":
                # A custom server cannot load an MLServer model: replace it (not without a gap).
                self._stop(record)
                (folder / SERVER_FILE).unlink(missing_ok=True)
                record = None
            if record is not None and self._alive(record):
                loaded = (record.version, record.model_uri, record.implementation)
                unchanged = loaded == (spec.version, uri, implementation)
                unchanged = unchanged and routing.retune(folder, spec)  # weights: in place
                if unchanged and self._version_ready(record, spec.model_name, spec.version):
                    return self._observed(spec.model_name, record, detail="already serving")
                return self._swap(spec, record, implementation, uri, deadline)
            if record is not None:
                self._stop(record)
            return self._start(spec, implementation, uri, deadline, previous=record)

    def _preview(self, spec: DeploymentSpec) -> AbstractContextManager[DeploymentStatus | None]:
        """The candidate beside the live version, under a private name; see
        :mod:`~mlops_kit.targets.local.preview`."""
        from mlops_kit.targets.local.preview import preview

        return preview(self, spec)

    def _delete(self, model_name: str) -> None:
        """Stop the model's server (SIGTERM, then SIGKILL after a grace period); idempotent."""
        folder = self._folder(model_name)
        if not folder.is_dir():
            return
        with locked(folder / ".lock"):
            for name in (NEXT_SERVER_FILE, SERVER_FILE):
                record = ServerRecord.read(folder / name)
                if record is not None:
                    self._stop(record)
                    remove_record(folder / name)

    def _status(self, model_name: str) -> DeploymentStatus | None:
        """Recorded state checked against the live process and its HTTP answers."""
        record = ServerRecord.read(self._folder(model_name) / SERVER_FILE)
        if record is None:
            return None
        return self._observed(model_name, record)

    def _list(self) -> list[DeploymentStatus]:
        """Status of every model with a server record in this environment, by name."""
        if not self.root.is_dir():
            return []
        found = []
        for server_file in sorted(self.root.glob(f"*/{SERVER_FILE}")):
            status = self._status(server_file.parent.name)
            if status is not None:
                found.append(status)
        return found

    def _endpoint(self, model_name: str) -> str:
        """``http://127.0.0.1:PORT/v2/models/NAME``; TargetError if it is not deployed.

        A custom-flavour server (status ``protocol="seldon"``) answers the Seldon protocol at
        ``http://127.0.0.1:PORT/api/v1.0/predictions`` instead.
        """
        record = self.server(model_name)
        if record is None:
            raise TargetError(
                f"model {model_name!r} is not deployed in environment {self.environment.name!r}"
            )
        return endpoint(record, model_name)

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

    @staticmethod
    def _alive(record: ServerRecord) -> bool:
        return alive(record)

    def _get_ok(self, url: str) -> bool:
        try:
            return self._client.get(url).status_code == 200
        except httpx.HTTPError:
            return False

    def _version_ready(self, record: ServerRecord, model_name: str, version: str) -> bool:
        return self._get_ok(version_url(record, model_name, version) + "/ready")

    def _observed(
        self, model_name: str, record: ServerRecord, detail: str = ""
    ) -> DeploymentStatus:
        def status(version: str | None, ready: bool, detail: str) -> DeploymentStatus:
            return DeploymentStatus(
                environment=self.environment.name,
                model_name=model_name,
                version=version,
                ready=ready,
                endpoint=endpoint(record, model_name),
                detail=detail,
                pid=record.pid,
                protocol="seldon" if record.protocol == "seldon" else "v2",
                metrics_url=record.metrics_url if record.protocol == "v2" else None,
                candidate=routing.observed(record, model_name) if version else None,
            )

        log = self._folder(model_name) / LOG_FILE
        if not self._alive(record):
            return status(None, False, dead_detail(record, log))
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

    def _recorded_ports(self, previous: ServerRecord | None) -> tuple[int, ...] | None:
        """The ports ``previous`` ran on, to start again on, if they are all free."""
        if previous is None:
            return None
        if previous.protocol == "seldon":
            recorded: tuple[int, ...] = (previous.http_port, previous.metrics_port)
        else:
            recorded = (previous.http_port, previous.grpc_port, previous.metrics_port)
        return recorded if all(port_free(self.host, port) for port in recorded) else None

    def _start(
        self,
        spec: DeploymentSpec,
        implementation: str,
        uri: str,
        deadline: float,
        previous: ServerRecord | None,
    ) -> DeploymentStatus:
        folder = self._folder(spec.model_name)
        mlserver.write_model_settings(folder, spec, implementation, uri, self.settings.serving)
        began = time.monotonic()
        record = self._until_ready(
            spec,
            SERVER_FILE,
            self._recorded_ports(previous),
            launch=lambda p: mlserver.launch(
                folder,
                spec,
                self.host,
                implementation,
                uri,
                *p,
                serving=self.settings.serving,
                control_token=self._token,
            ),  # fmt: skip
            name="MLServer",
            ready=lambda r: (
                self._get_ok(f"{r.base_url}/v2/health/ready")
                and self._version_ready(r, spec.model_name, spec.version)
            ),
            deadline=deadline,
            count=3,
        )
        took = time.monotonic() - began
        logger.info("%s: version %s ready in %.1f s", spec.key, spec.version, took)
        detail = f"started in {took:.1f} s"
        holder = port_holder(previous.http_port) if previous is not None else None
        if previous is not None and holder is not None and record.http_port != previous.http_port:
            detail += (
                f"; port {previous.http_port} is held by pid {holder[0]}, not the toolkit's "
                f"({holder[1]}): now on port {record.http_port}"
            )
            logger.warning("%s: %s", spec.key, detail)
        return self._observed(spec.model_name, record, detail=detail)

    def _until_ready(
        self,
        spec: DeploymentSpec,
        record_file: str,
        ports: tuple[int, ...] | None,
        *,
        launch: Callable[[tuple[int, ...]], ServerRecord],
        name: str,
        ready: Callable[[ServerRecord], bool],
        deadline: float,
        count: int,
    ) -> ServerRecord:
        """Launch on ``ports`` (else free ones), record it and wait until it answers.

        A port taken between choosing and binding gets one retry on fresh ports; any failure
        stops the process and drops its record.
        """
        folder = self._folder(spec.model_name)
        for attempt in range(2):
            record = launch(ports or free_ports(self.host, count))
            record.write(folder / record_file)
            try:
                self._wait_ready(record, spec, name, ready, deadline)
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

    def _wait_ready(
        self,
        record: ServerRecord,
        spec: DeploymentSpec,
        name: str,
        ready: Callable[[ServerRecord], bool],
        deadline: float,
    ) -> None:
        log = Path(record.folder) / LOG_FILE
        try:
            wait_ready(
                lambda: ready(record),
                pid=record.pid,
                timeout=deadline - time.monotonic(),
                interval=_POLL,
                alive=lambda: self._alive(record),
                log=log,
                what=f"{name} for {spec.key}",
            )
        except ProcessExited as exc:
            raise TargetError(str(exc)) from None
        except WaitTimeout:
            raise DeploymentTimeout(
                f"{name} for {spec.key} version {spec.version} was not ready in time; "
                f"last lines of {log}:\n{log_tail(log)}"
            ) from None

    def _swap(
        self,
        spec: DeploymentSpec,
        record: ServerRecord,
        implementation: str,
        uri: str,
        deadline: float,
    ) -> DeploymentStatus:
        folder = self._folder(spec.model_name)
        log = folder / LOG_FILE
        settings_path = folder / spec.model_name / MODEL_SETTINGS_FILE
        old_settings = settings_path.read_text() if settings_path.exists() else None
        mlserver.write_model_settings(folder, spec, implementation, uri, self.settings.serving)
        load_url = f"{record.base_url}/v2/repository/models/{quote(spec.model_name, safe='')}/load"
        began = time.monotonic()
        try:
            response = self._client.post(load_url, timeout=max(deadline - began, 1.0))
        except httpx.TimeoutException:
            self._restore(settings_path, old_settings)
            raise DeploymentTimeout(
                f"MLServer for {spec.key} did not load version {spec.version} in time; last "
                f"lines of {log}:\n{log_tail(log)}"
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
                f"(HTTP {response.status_code}: {mlserver.error_text(response)}); version "
                f"{record.version} is still served. Last lines of {log}:\n{log_tail(log)}"
            )
        try:
            wait_until(
                lambda: self._version_ready(record, spec.model_name, spec.version),
                timeout=deadline - time.monotonic(),
                interval=_POLL,
                what=f"version {spec.version} of {spec.key} to answer",
            )
        except WaitTimeout:
            raise DeploymentTimeout(
                f"version {spec.version} of {spec.key} was loaded but does not answer"
            ) from None
        previous = record.version
        record = replace(record, version=spec.version, model_uri=uri, implementation=implementation)
        record.write(folder / SERVER_FILE)
        took = time.monotonic() - began
        logger.info(
            "%s: swapped version %s -> %s in %.2f s", spec.key, previous, spec.version, took
        )
        return self._observed(
            spec.model_name, record, detail=f"updated from version {previous} in {took:.2f} s"
        )

    @staticmethod
    def _restore(path: Path, text: str | None) -> None:
        if text is not None:
            _write_text(path, text)

    def _stop(self, record: ServerRecord) -> None:
        if record.protocol == "seldon":
            custom.drain(record)
        stop_records([record])

    # -- the custom flavour: a user's class behind seldon-core's wrapper -----------------------

    def _apply_custom(
        self, spec: DeploymentSpec, folder: Path, timeout: float | None
    ) -> DeploymentStatus:
        server = custom.custom_server(self.settings, spec)
        deadline = time.monotonic() + (timeout or self.settings.serving.ready_timeout)
        folder.mkdir(parents=True, exist_ok=True)
        with locked(folder / ".lock"):
            stale = ServerRecord.read(folder / NEXT_SERVER_FILE)
            if stale is not None:  # a replacement whose deploy was interrupted
                self._stop(stale)
                (folder / NEXT_SERVER_FILE).unlink(missing_ok=True)
            record = ServerRecord.read(folder / SERVER_FILE)
            if record is not None and self._alive(record):
                unchanged = (record.version, record.model_uri, record.implementation) == (
                    spec.version,
                    server.uri,
                    server.implementation,
                )
                if unchanged and record.protocol == "seldon":
                    status = self._observed(spec.model_name, record, detail="already serving")
                    if status.ready:
                        return status
                return self._replace_custom(spec, server, record, deadline)
            if record is not None:
                self._stop(record)
            reuse = record if record is not None and record.protocol == "seldon" else None
            began = time.monotonic()
            record = self._run_custom(spec, server, deadline, SERVER_FILE, previous=reuse)
            took = time.monotonic() - began
            logger.info("%s: version %s ready in %.1f s", spec.key, spec.version, took)
            return self._observed(spec.model_name, record, detail=f"started in {took:.1f} s")

    def _replace_custom(
        self, spec: DeploymentSpec, server: custom.CustomServer, old: ServerRecord, deadline: float
    ) -> DeploymentStatus:
        """Start the new version beside the old, switch the record once it answers, stop the old."""
        folder = self._folder(spec.model_name)
        began = time.monotonic()
        record = self._run_custom(spec, server, deadline, NEXT_SERVER_FILE, previous=None)
        record.write(folder / SERVER_FILE)
        (folder / NEXT_SERVER_FILE).unlink(missing_ok=True)
        self._stop(old)
        took = time.monotonic() - began
        logger.info(
            "%s: replaced version %s -> %s in %.1f s", spec.key, old.version, spec.version, took
        )
        return self._observed(
            spec.model_name, record, detail=f"replaced version {old.version} in {took:.1f} s"
        )

    def _run_custom(
        self,
        spec: DeploymentSpec,
        server: custom.CustomServer,
        deadline: float,
        record_file: str,
        previous: ServerRecord | None,
    ) -> ServerRecord:
        """Launch, record in ``record_file`` and wait until it answers; cleans up on failure."""
        folder = self._folder(spec.model_name)
        return self._until_ready(
            spec,
            record_file,
            self._recorded_ports(previous),
            launch=lambda p: custom.launch_custom(folder, spec, self.host, server, *p),
            name="the custom server",
            ready=lambda r: self._get_ok(r.base_url + seldon.HEALTH_PATH),
            deadline=deadline,
            count=2,
        )

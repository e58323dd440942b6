"""The embedded registry served by an ``mlflow server`` on loopback: start, stop, status, reuse.

The server is what makes registry webhooks possible: MLflow delivers them only from the
``mlflow server`` process, never from a client writing to SQLite. It serves the project's own
``sqlite:///<state_dir>/mlflow.db``, or the project's PostgreSQL registry when ``registry_uri``
names one (its URI reaches the server through the environment, so ``ps`` never shows the
password); artifacts are not proxied (``--no-serve-artifacts``): they
stay plain files under ``<state_dir>/artifacts`` or go to the project's ``artifact_store``
(``s3://…``), which clients read and write directly, so ``get_model_version_download_uri``
answers with a local path or an ``s3://`` URI a cluster can read, never ``mlflow-artifacts:/``.

Everything it keeps lives in ``<state_dir>/registry-server/``: ``server.json`` (pid, port,
start time), ``server.log``, the key that encrypts webhook secrets at rest, and the admin
password of MLflow's basic-auth app it runs (0600): without it no request is answered, so
nobody else on the machine can move an alias or list the webhooks. Starting takes
about 5-6 s on a 2-core machine (two Python processes importing MLflow, the schema check);
``ensure_running`` reuses a live server in milliseconds. It runs one uvicorn worker: the
embedded registry is light, and these machines have two cores.

The server runs with MLflow's webhook protections relaxed for loopback receivers
(:data:`WEBHOOK_ENV`): ``http`` URLs and private addresses are allowed as webhook targets.
That is right for one machine and **wrong for a shared server**, where it lets anyone who can
create a webhook make the server call internal addresses (SSRF). A production registry keeps
MLflow's defaults (https, public addresses only) and its receivers behind https.
"""

from __future__ import annotations

import base64
import logging
import os
import secrets
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from mlops_kit.errors import ConfigError, ProcessExited, RegistryError, StopFailed, WaitTimeout
from mlops_kit.process import (
    command_line,
    forget,
    free_ports,
    group_members,
    http_ok,
    locked,
    log_size,
    log_tail,
    read_record,
    reap,
    secret_file,
    spawn,
    stop_groups,
    wait_ready,
    write_record,
)
from mlops_kit.registry import database

if TYPE_CHECKING:
    from mlops_kit.project import Project

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
SERVER_DIR = "registry-server"
STATE_FILE = "server.json"
LOG_FILE = "server.log"
KEY_FILE = "webhook-secrets.key"
PASSWORD_FILE = "admin-password"  # noqa: S105 - a file name
AUTH_CONFIG_FILE = "basic-auth.ini"
FLASK_KEY_FILE = "flask-secret.key"
ADMIN_USER = "mlops-kit"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0

WEBHOOK_ENV = {
    # Loopback receivers speak http on 127.0.0.1: both are refused by MLflow's defaults.
    "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
    "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
    # MLflow caches the webhook list per event (60 s by default): a webhook created a moment
    # ago would miss the first alias moves. Listing them is one indexed query per event.
    "MLFLOW_WEBHOOK_CACHE_TTL": "0",
}
"""Environment the server gets so that webhooks reach receivers on loopback (not for production)."""

_SERVER_ENV = {
    # The job runner (huey consumers) is for GenAI jobs we never submit; it costs processes.
    "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
}


@dataclass(frozen=True)
class ServerInfo:
    """A registry server this project started: where it listens and where it logs."""

    pid: int
    """Process id of ``mlflow server``; also the id of its process group."""
    port: int
    """TCP port on :data:`HOST`."""
    backend_uri: str
    """The database it serves (SQLite or PostgreSQL, password redacted)."""
    artifact_root: str
    """Default artifact root of new experiments (``file://`` or the ``s3://`` store)."""
    log: str
    """Path of the server log."""
    started_at: float
    """Unix time the process was started."""
    start_seconds: float | None = None
    """Seconds from process start to the first answer of ``GET /health``."""
    host: str = HOST

    @property
    def url(self) -> str:
        """Tracking and registry URI for clients."""
        return f"http://{self.host}:{self.port}"


def server_dir(project: Project) -> Path:
    """Where the registry server keeps its pid file, log and key."""
    return project.state_dir / SERVER_DIR


def backend_uri(project: Project) -> str:
    """The database the server serves: the project's PostgreSQL registry, else its SQLite."""
    if database.is_postgres(project.settings.registry_uri):
        return project.tracking_uri
    return f"sqlite:///{project.state_dir / 'mlflow.db'}"


def status(project: Project) -> ServerInfo | None:
    """The running server, or None when none runs or it does not answer ``/health``."""
    info = _read(project)
    if info is None or not _group_alive(info.pid) or not _healthy(info.url):
        return None
    return info


def start(project: Project, *, port: int = 0, timeout: float = START_TIMEOUT) -> ServerInfo:
    """Start the server and block until ``GET /health`` answers; RegistryError if it does not.

    ``port=0`` picks a free port. Starting while a server of this project runs is an error
    (see :func:`ensure_running`); a stale ``server.json`` left by a dead server is replaced.
    Nothing is left running when start fails.
    """
    _check_embedded(project)
    with _locked(project):
        return _start(project, port=port, timeout=timeout)


def ensure_running(project: Project, *, timeout: float = START_TIMEOUT) -> str:
    """The URL of the project's registry server, starting it unless a live one answers."""
    _check_embedded(project)
    with _locked(project):
        info = _read(project)
        if info is not None and _group_alive(info.pid):
            if _healthy(info.url):
                return info.url
            logger.warning("registry server pid %s does not answer; restarting it", info.pid)
            _terminate(info.pid, STOP_TIMEOUT)
        return _start(project, port=0, timeout=timeout).url


def stop(project: Project, *, timeout: float = STOP_TIMEOUT) -> bool:
    """Stop the server with its whole process group; True if one was running.

    Idempotent: stopping a stopped server does nothing. SIGTERM first, SIGKILL after
    ``timeout`` seconds.
    """
    with _locked(project):
        info = _read(project)
        if info is None:
            return False
        stopped = _terminate(info.pid, timeout)
        (server_dir(project) / STATE_FILE).unlink(missing_ok=True)
        return stopped


def served(project: Project, *, timeout: float = START_TIMEOUT) -> Project:
    """The same project with its registry reached through the (started if need be) server."""
    from mlops_kit.project import Project

    url = ensure_running(project, timeout=timeout)
    # MLflow's clients read the basic-auth credentials from the environment.
    os.environ.update(client_env(project))
    return Project(project.settings.model_copy(update={"registry_uri": url}))


def server_env(project: Project) -> dict[str, str]:
    """The environment the server process gets: ours plus :data:`WEBHOOK_ENV` and the key."""
    env = dict(os.environ)
    # mlflow.set_tracking_uri() exports these; the server has its own stores, not a client's.
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        env.pop(name, None)
    env.update(WEBHOOK_ENV)
    env.update(_SERVER_ENV)
    # Without a fixed key MLflow encrypts webhook secrets with a key made up per process:
    # after a restart no stored secret could be decrypted and every delivery would fail.
    env["MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY"] = _encryption_key(project)
    env["MLFLOW_AUTH_CONFIG_PATH"] = str(_auth_config(project))
    env["MLFLOW_FLASK_SERVER_SECRET_KEY"] = secret_file(
        server_dir(project) / FLASK_KEY_FILE, lambda: secrets.token_urlsafe(32)
    )
    env.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    return env


def _check_embedded(project: Project) -> None:
    uri = project.settings.registry_uri
    if uri is None or database.is_postgres(uri) or uri == backend_uri(project):
        return
    parsed = urlparse(uri)
    if parsed.scheme in ("http", "https") and parsed.hostname in ("127.0.0.1", "localhost", "::1"):
        return  # a project already pointed at this server (see served())
    raise ConfigError(
        f"the project's registry is {parsed.scheme}://{parsed.hostname or ''}...; the registry "
        "server serves only the embedded SQLite registry of the state directory or a "
        "PostgreSQL registry"
    )


def _start(project: Project, *, port: int, timeout: float) -> ServerInfo:
    folder = server_dir(project)
    folder.mkdir(parents=True, exist_ok=True)
    current = _read(project)
    if current is not None:
        if _group_alive(current.pid):
            raise RegistryError(
                f"a registry server already runs at {current.url} (pid {current.pid}); "
                "use ensure_running() to reuse it or stop() it first"
            )
        (folder / STATE_FILE).unlink(missing_ok=True)
    if project.artifact_root is not None:
        project.artifact_root.mkdir(parents=True, exist_ok=True)
    attempts = 1 if port else 3
    for attempt in range(1, attempts + 1):
        chosen = port or free_ports(HOST)[0]
        try:
            return _launch(project, chosen, timeout)
        except _PortTaken:
            # Another process took the free port between our probe and the server's bind.
            if attempt == attempts:
                raise RegistryError(f"port {chosen} on {HOST} is already in use") from None
    raise AssertionError("unreachable")


class _PortTaken(RegistryError):
    """The server could not bind its port (internal: :func:`_start` retries on another)."""


def _launch(project: Project, port: int, timeout: float) -> ServerInfo:
    folder = server_dir(project)
    log_path = folder / LOG_FILE
    store = backend_uri(project)
    # Before the server starts: its first use of a new database would race with clients'.
    database.prepare(project.settings.registry_uri)
    env = server_env(project)
    env["MLFLOW_BACKEND_STORE_URI"] = store  # mlflow server's --backend-store-uri, not in argv
    cmd = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--default-artifact-root",
        project.artifact_uri,
        "--no-serve-artifacts",
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        "1",
        # MLflow's basic-auth app: every API call needs the toolkit's credentials, so no one
        # else on the machine can move an alias or read the webhooks.
        "--app-name",
        "basic-auth",
    ]
    log_offset = log_size(log_path)
    started = time.monotonic()
    proc = spawn(
        cmd,
        log=log_path,
        what=f"the registry server on port {port}",
        cwd=project.state_dir,
        env=env,
    )
    info = ServerInfo(
        pid=proc.pid,
        port=port,
        backend_uri=database.redact(store),
        artifact_root=project.artifact_uri,
        log=str(log_path),
        started_at=time.time(),
    )
    try:
        _write(project, info)
        try:
            wait_ready(
                lambda: _healthy(info.url, timeout=1.0),
                pid=proc.pid,
                timeout=started + timeout - time.monotonic(),
                log=log_path,
                log_offset=log_offset,
                what="the registry server",
            )
        except ProcessExited as exc:
            if "address already in use" in exc.tail.lower():
                raise _PortTaken(exc.tail) from None
            raise RegistryError(
                f"the registry server exited with code {exc.returncode} while starting; "
                f"log {log_path}:\n{exc.tail}"
            ) from None
        except WaitTimeout:
            raise RegistryError(
                f"the registry server did not answer {info.url}/health within {timeout:.0f} s; "
                f"log {log_path}:\n{log_tail(log_path, offset=log_offset)}"
            ) from None
    except BaseException:
        _terminate(proc.pid, 5.0)
        (folder / STATE_FILE).unlink(missing_ok=True)
        raise
    info = replace(info, start_seconds=round(time.monotonic() - started, 3))
    _write(project, info)
    logger.info(
        "registry server ready at %s in %.1f s (pid %s)", info.url, info.start_seconds, proc.pid
    )
    return info


def _read(project: Project) -> ServerInfo | None:
    return read_record(server_dir(project) / STATE_FILE, ServerInfo)


def _write(project: Project, info: ServerInfo) -> None:
    write_record(server_dir(project) / STATE_FILE, info)


def _encryption_key(project: Project) -> str:
    return secret_file(
        server_dir(project) / KEY_FILE, lambda: base64.urlsafe_b64encode(os.urandom(32)).decode()
    )  # a Fernet key


def credentials(project: Project) -> tuple[str, str]:
    """The registry server's admin user and password (``<state_dir>/registry-server``, 0600)."""
    password = secret_file(server_dir(project) / PASSWORD_FILE, lambda: secrets.token_urlsafe(24))
    return ADMIN_USER, password


def client_env(project: Project) -> dict[str, str]:
    """What an MLflow client needs to talk to the server: MLflow's basic-auth variables."""
    user, password = credentials(project)
    return {"MLFLOW_TRACKING_USERNAME": user, "MLFLOW_TRACKING_PASSWORD": password}


def _auth_config(project: Project) -> Path:
    """MLflow's basic-auth configuration: nobody but the toolkit's admin may do anything."""
    user, password = credentials(project)
    path = server_dir(project) / AUTH_CONFIG_FILE
    text = (
        "[mlflow]\n"
        "default_permission = NO_PERMISSIONS\n"
        f"database_uri = sqlite:///{server_dir(project) / 'auth.db'}\n"
        f"admin_username = {user}\n"
        f"admin_password = {password}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    return path


@contextmanager
def _locked(project: Project) -> Iterator[None]:
    """Serialize start/stop between processes (two notebooks starting the server at once)."""
    with locked(server_dir(project) / ".lock"):
        yield


def _healthy(url: str, timeout: float = 2.0) -> bool:
    return http_ok(f"{url}/health", timeout=timeout)


# Process groups. The server runs in its own session, so its pid is also the id of the group
# holding it and the uvicorn worker it spawns; signals go to the group.


def _group_alive(pgid: int) -> bool:
    reap(pgid)
    return any(_is_mlflow(pid) for pid in group_members(pgid))


def _is_mlflow(pid: int) -> bool:
    """Guard against a recycled pid: the process must be an MLflow server."""
    args = command_line(pid)
    return args is not None and any("mlflow" in arg for arg in args)


def _terminate(pgid: int, timeout: float) -> bool:
    if not _group_alive(pgid):
        forget(pgid)
        return False
    try:
        stop_groups([pgid], grace=timeout, what="registry server group")
    except StopFailed:
        raise RegistryError(f"could not stop the registry server (process group {pgid})") from None
    return True

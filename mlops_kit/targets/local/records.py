"""What runs where: the server records of the local target, their URLs, and stopping servers."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from mlops_kit.errors import StopFailed, TargetError
from mlops_kit.process import (
    find_group_leaders,
    forget,
    locked,
    pid_alive,
    port_holder,
    read_record,
    stop_groups,
    write_json,
    write_record,
)
from mlops_kit.serving import seldon

logger = logging.getLogger(__name__)

SERVER_FILE = "server.json"
NEXT_SERVER_FILE = "server.next.json"
"""A custom server being started to replace the one in ``server.json``."""
LOG_FILE = "server.log"
SETTINGS_FILE = "settings.json"
MODEL_SETTINGS_FILE = "model-settings.json"
STOP_GRACE = 10.0
"""Seconds a server gets to stop after SIGTERM before it is killed."""
SCRAPE_TARGETS_FILE = "scrape-targets.json"
"""Under ``<state_dir>/serving/``: every live endpoint's metrics address, in Prometheus'
file-based service discovery format; rewritten whenever a server record changes."""


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
        return f"http://{url_host(self.host)}:{self.http_port}"

    @property
    def metrics_url(self) -> str:
        """Prometheus metrics of the server."""
        return f"http://{url_host(self.host)}:{self.metrics_port}/metrics"

    @classmethod
    def read(cls, path: Path) -> ServerRecord | None:
        """The record at ``path``, or None if there is none (or it is unreadable)."""
        return read_record(path, cls)

    def write(self, path: Path) -> None:
        """Write atomically, so a reader never sees half a record; republish the scrape targets.

        ``path`` is ``<state_dir>/serving/<environment>/<model>/server.json``.
        """
        write_record(path, self)
        publish_targets(path.parents[2])


def remove_record(path: Path) -> None:
    """Delete the record at ``path`` (if any) and republish the scrape targets."""
    path.unlink(missing_ok=True)
    publish_targets(path.parents[2])


def scrape_targets(root: Path) -> list[dict[str, object]]:
    """Prometheus ``file_sd`` entries for the live V2 servers under ``root`` (``serving/``).

    One entry per server answering for a version, labelled with its ``environment`` (also as
    ``namespace``, the label the dashboard selects environments by, as on a cluster), ``model``,
    ``version`` and ``pod`` (``<environment>/<model>``, one process each).
    """
    found: list[dict[str, object]] = []
    for server_file in sorted(root.glob(f"*/*/{SERVER_FILE}")):
        record = ServerRecord.read(server_file)
        if record is None or record.protocol != "v2" or not record.version or not alive(record):
            continue
        environment, model = server_file.parent.parent.name, server_file.parent.name
        found.append(
            {
                "targets": [f"{url_host(record.host)}:{record.metrics_port}"],
                "labels": {
                    "environment": environment,
                    "namespace": environment,
                    "model": model,
                    "version": record.version,
                    "pod": f"{environment}/{model}",
                },
            }
        )
    return found


def publish_targets(root: Path) -> Path:
    """Rewrite ``root/scrape-targets.json`` from the records (a glob and a few small reads).

    Prometheus (``mlops-kit monitor``) watches the file and starts or stops scraping at once.
    """
    path = root / SCRAPE_TARGETS_FILE
    root.mkdir(parents=True, exist_ok=True)
    with locked(root / f".{SCRAPE_TARGETS_FILE}.lock"):
        write_json(path, scrape_targets(root))
    return path


def url_host(host: str) -> str:
    """``host`` as it goes in a URL: a wildcard bind becomes loopback, IPv6 gets brackets."""
    if host in ("0.0.0.0", ""):  # noqa: S104 - mapping a wildcard bind to a dialable address
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def endpoint(record: ServerRecord, model_name: str) -> str:
    """The model's prediction endpoint on the recorded server (V2, or Seldon for ``custom``)."""
    if record.protocol == "seldon":
        return f"{record.base_url}{seldon.PREDICT_PATH}"
    return f"{record.base_url}/v2/models/{quote(model_name, safe='')}"


def version_url(record: ServerRecord, model_name: str, version: str) -> str:
    """The V2 endpoint of one version of the model."""
    return f"{endpoint(record, model_name)}/versions/{quote(version, safe='')}"


def alive(record: ServerRecord) -> bool:
    """Is the recorded server running, and is it the one started for its folder (no reused pid)?"""
    return pid_alive(record.pid, argument=record.folder)


def stop_records(records: list[ServerRecord], grace: float = STOP_GRACE) -> None:
    """SIGTERM each server's process group, SIGKILL what remains after ``grace``, and wait."""
    # Signal a group only while its leader is provably ours: pids and pgids get reused.
    ours = [record.pgid for record in records if alive(record)]
    for record in records:
        if record.pgid not in ours:
            forget(record.pid)  # exited on its own: reaped, nothing left to remember
    try:
        stop_groups(ours, grace=grace, what="server")
    except StopFailed as exc:
        pids = ", ".join(str(pgid) for pgid in exc.pgids)
        raise TargetError(f"could not stop server process group(s) {pids}") from None


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
        {f"{path.parent.parent.name}/{path.parent.name}" for path, record in found if alive(record)}
    )
    stop_records([record for _, record in found])
    for path, _ in found:
        path.unlink(missing_ok=True)
    if root.is_dir():
        publish_targets(root)
    scope = root / environment if environment else root
    # Left behind when a state directory is deleted while its servers run: the folder stays
    # in their command line.
    orphans = sorted(
        set(find_group_leaders(f"{scope}/", "mlserver"))
        | set(find_group_leaders(f"{scope}/", "mlops_kit.serving.server"))
    )
    try:
        stop_groups(orphans, grace=STOP_GRACE, what="unrecorded server")
    except StopFailed as exc:
        logger.warning("could not stop unrecorded server group(s) %s", exc.pgids)
    return stopped + [f"unrecorded server {pid}" for pid in orphans]


def dead_detail(record: ServerRecord, log: Path) -> str:
    """Why the recorded server is gone, naming a stranger that answers on its port."""
    detail = f"server process {record.pid} is not running; see {log}"
    holder = port_holder(record.http_port)
    if holder is not None and holder[0] != record.pid:
        detail += (
            f". Port {record.http_port} is held by pid {holder[0]}, not a server of the "
            f"toolkit ({holder[1]}); sync moves the deployment to a port it owns"
        )
    return detail

"""The local Prometheus: a real ``prometheus`` (Debian's 2.42) on loopback, scraping every endpoint.

``mlops-kit monitor`` starts it, ``mlops-kit down`` stops it. Everything it keeps lives in
``<state_dir>/monitoring/``::

    prometheus.yml      generated: scrape interval, one job over the local endpoints
    data/               its time-series database (retention ``monitor.retention``)
    prometheus.log      its output, appended across restarts
    server.json         pid, port, URL, start time

The job finds the endpoints through file-based service discovery: the local target rewrites
``<state_dir>/serving/scrape-targets.json`` whenever a server record changes (see
:func:`~mlops_kit.targets.local.records.publish_targets`), and Prometheus picks the change up
from the file at once (its discovery hands new targets to the scrapers every 5 s), so a
deployment is scraped from its first seconds without a restart.
Each endpoint carries the labels ``environment`` (also as ``namespace``), ``model``,
``version`` and ``pod``; ``honor_labels`` keeps a sample's own ``model``/``version`` (the
runtime's per-version series) over the endpoint's.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_kit.errors import MonitorError, ProcessExited, PrometheusMissing, StopFailed, WaitTimeout
from mlops_kit.process import (
    ProcessRecord,
    forget,
    free_ports,
    http_ok,
    locked,
    log_size,
    log_tail,
    pid_alive,
    spawn,
    stop_groups,
    wait_ready,
    write_text,
)
from mlops_kit.targets.local.records import SCRAPE_TARGETS_FILE, publish_targets

if TYPE_CHECKING:
    from mlops_kit.project import Project
    from mlops_kit.settings_monitor import MonitorSettings

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
MONITOR_DIR = "monitoring"
CONFIG_FILE = "prometheus.yml"
DATA_DIR = "data"
LOG_FILE = "prometheus.log"
STATE_FILE = "server.json"
JOB = "mlops-kit"
STOP_GRACE = 10.0


@dataclass(frozen=True)
class Monitor:
    """A running local Prometheus: where it answers and what it keeps."""

    pid: int
    url: str
    """``http://127.0.0.1:PORT``: its HTTP API (``/api/v1/query``) and web UI."""
    config: Path
    data: Path
    log: Path
    started_at: str

    def summary(self) -> str:
        """One line: where it answers."""
        return f"Prometheus at {self.url} (pid {self.pid}), data in {self.data}"


def monitor_dir(project: Project) -> Path:
    """``<state_dir>/monitoring``: the local Prometheus' files."""
    return project.state_dir / MONITOR_DIR


def targets_file(project: Project) -> Path:
    """The file-based discovery file the local target keeps current."""
    return project.state_dir / "serving" / SCRAPE_TARGETS_FILE


def find_binary(settings: MonitorSettings) -> str | None:
    """The Prometheus program's path, or None when it is not installed."""
    return shutil.which(settings.binary)


def duration(seconds: float) -> str:
    """``seconds`` as a Prometheus duration in milliseconds (``1500ms``)."""
    return f"{max(round(seconds * 1000), 1)}ms"


def config(project: Project) -> dict[str, Any]:
    """The generated ``prometheus.yml``: one job scraping every local endpoint via file_sd."""
    interval = project.settings.monitor.scrape_interval_s
    return {
        "global": {
            "scrape_interval": duration(interval),
            "scrape_timeout": duration(min(interval, 10.0)),
            "evaluation_interval": duration(interval),
        },
        "scrape_configs": [
            {
                "job_name": JOB,
                "honor_labels": True,
                "file_sd_configs": [
                    {"files": [str(targets_file(project))], "refresh_interval": "30s"}
                ],
            }
        ],
    }


def status(project: Project) -> Monitor | None:
    """The project's running Prometheus, or None when none runs or it does not answer."""
    monitor = _read(project)
    if monitor is None or not _alive(monitor) or not http_ok(f"{monitor.url}/-/ready"):
        return None
    return monitor


def start(project: Project, *, port: int = 0) -> Monitor:
    """Start the local Prometheus (or return the one running); blocks until it is ready.

    PrometheusMissing, naming how to install it, when the program is not there; MonitorError
    when it exits or does not answer ``/-/ready`` within ``monitor.start_timeout_s``.
    """
    settings = project.settings.monitor
    binary = find_binary(settings)
    if binary is None:
        raise PrometheusMissing(settings.binary)
    folder = monitor_dir(project)
    folder.mkdir(parents=True, exist_ok=True)
    with locked(folder / ".lock"):
        running = _read(project)
        if running is not None and _alive(running):
            if http_ok(f"{running.url}/-/ready"):
                return running
            _stop(running)
        return _launch(project, binary, port or free_ports(HOST)[0])


def stop(project: Project) -> bool:
    """Stop the local Prometheus; True if one was running. Idempotent."""
    folder = monitor_dir(project)
    if not (folder / STATE_FILE).exists():
        return False
    with locked(folder / ".lock"):
        monitor = _read(project)
        if monitor is None:
            return False
        was_running = _alive(monitor)
        _stop(monitor)
        (folder / STATE_FILE).unlink(missing_ok=True)
        return was_running


def _launch(project: Project, binary: str, port: int) -> Monitor:
    import yaml

    settings = project.settings.monitor
    folder = monitor_dir(project)
    config_path, data, log = folder / CONFIG_FILE, folder / DATA_DIR, folder / LOG_FILE
    publish_targets(targets_file(project).parent)  # the discovery file exists from the start
    write_text(config_path, yaml.safe_dump(config(project), sort_keys=False))
    command = [
        binary,
        f"--config.file={config_path}",
        f"--storage.tsdb.path={data}",
        f"--storage.tsdb.retention.time={settings.retention}",
        f"--web.listen-address={HOST}:{port}",
    ]
    offset = log_size(log)
    proc = spawn(command, log=log, what=f"Prometheus on {HOST}:{port}", cwd=folder)
    monitor = Monitor(
        pid=proc.pid,
        url=f"http://{HOST}:{port}",
        config=config_path,
        data=data,
        log=log,
        started_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )
    _write(project, monitor)
    try:
        took = wait_ready(
            f"{monitor.url}/-/ready",
            pid=proc.pid,
            timeout=settings.start_timeout_s,
            log=log,
            log_offset=offset,
            what="Prometheus",
        )
    except (ProcessExited, WaitTimeout) as exc:
        _stop(monitor)
        (folder / STATE_FILE).unlink(missing_ok=True)
        raise MonitorError(f"Prometheus did not start: {exc}") from None
    logger.info("Prometheus ready at %s in %.1f s", monitor.url, took)
    return monitor


def _read(project: Project) -> Monitor | None:
    record = ProcessRecord.read(monitor_dir(project) / STATE_FILE)
    if record is None:
        return None
    extra = record.extra
    return Monitor(
        pid=record.pid,
        url=str(extra.get("url", f"http://{record.host}:{record.port}")),
        config=Path(str(extra.get("config", ""))),
        data=Path(str(extra.get("data", ""))),
        log=Path(record.log),
        started_at=record.started_at,
    )


def _write(project: Project, monitor: Monitor) -> None:
    port = int(monitor.url.rsplit(":", 1)[1])
    ProcessRecord(
        pid=monitor.pid,
        pgid=monitor.pid,
        host=HOST,
        port=port,
        log=str(monitor.log),
        started_at=monitor.started_at,
        extra={"url": monitor.url, "config": str(monitor.config), "data": str(monitor.data)},
    ).write(monitor_dir(project) / STATE_FILE)


def _alive(monitor: Monitor) -> bool:
    """Is the recorded process ours (its command line names our config), not a reused pid?"""
    return pid_alive(monitor.pid, argument=f"--config.file={monitor.config}")


def _stop(monitor: Monitor) -> None:
    if not _alive(monitor):
        forget(monitor.pid)
        return
    try:
        stop_groups([monitor.pid], grace=STOP_GRACE, what="Prometheus")
    except StopFailed:
        raise MonitorError(f"could not stop Prometheus (process group {monitor.pid})") from None


def tail(project: Project) -> str:
    """The last lines of the local Prometheus' log."""
    return log_tail(monitor_dir(project) / LOG_FILE)

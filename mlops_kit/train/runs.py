"""Crash-safe training runs: each run records the process that owns it, and the next training
marks the runs whose owner died (killed mid-training) FAILED instead of RUNNING forever."""

from __future__ import annotations

import os
import socket
from typing import TYPE_CHECKING

import psutil

if TYPE_CHECKING:
    from mlops_kit.project import Project

OWNER_TAGS = ("mlops.owner.host", "mlops.owner.pid", "mlops.owner.started")


def owner_tags() -> dict[str, str]:
    """Tags naming this process, so a later run can tell whether it is still alive."""
    me = psutil.Process(os.getpid())
    values = (socket.gethostname(), str(me.pid), f"{me.create_time():.2f}")
    return dict(zip(OWNER_TAGS, values, strict=True))


def _alive(pid: int, started: str) -> bool:
    try:
        return f"{psutil.Process(pid).create_time():.2f}" == started
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return False


def fail_stale_runs(project: Project) -> list[str]:
    """Mark RUNNING runs of this host whose owning process is gone as FAILED; their ids."""
    client = project.client
    host = socket.gethostname()
    runs = client.search_runs(
        [project.experiment_id()], filter_string="attributes.status = 'RUNNING'", max_results=200
    )
    stale = []
    for run in runs:
        tags = run.data.tags
        if tags.get(OWNER_TAGS[0]) != host or OWNER_TAGS[1] not in tags:
            continue
        if not _alive(int(tags[OWNER_TAGS[1]]), tags.get(OWNER_TAGS[2], "")):
            client.set_tag(run.info.run_id, "mlops.failure", "its process died before it ended")
            client.set_terminated(run.info.run_id, status="FAILED")
            stale.append(run.info.run_id)
    return stale

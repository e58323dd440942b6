"""Is it alive, who is in its group, and stopping groups: SIGTERM, wait, SIGKILL, reap.

A server started by :func:`~mlops_kit.process.spawn` leads a process group of its own
(pgid == pid) that also holds the workers it forks, so signals go to the whole group. Pids
and pgids are reused by the system: signal a group only while its leader is provably the
process you started (:func:`pid_alive` with an ``argument`` from its command line).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from collections.abc import Sequence

import psutil

from mlops_kit.errors import StopFailed, WaitTimeout
from mlops_kit.process.spawn import child, forget, reap
from mlops_kit.process.wait import wait_until

logger = logging.getLogger(__name__)

_GONE = (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)


def command_line(pid: int) -> list[str] | None:
    """The arguments ``pid`` runs with; None if it is gone, a zombie or not ours to read."""
    try:
        proc = psutil.Process(pid)
        if proc.status() in _GONE:
            return None
        return proc.cmdline()
    except psutil.Error:
        return None


def pid_alive(pid: int, *, argument: str | None = None) -> bool:
    """Is ``pid`` running (not a zombie), and is ``argument`` one of its command-line arguments?

    A child :func:`~mlops_kit.process.spawn` started is judged by its ``Popen`` (and reaped);
    any other pid must be signalable by us, and ``argument`` guards against a reused pid.
    """
    proc = child(pid)
    if proc is not None:
        return proc.poll() is None
    reap(pid)
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False  # PermissionError: someone else's process, so the pid was reused
    args = command_line(pid)
    if args is None:
        reap(pid)  # it may have died since the first reap: a zombie of ours is collected now
        return False
    return argument is None or argument in args


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes in process group ``pgid``, sorted."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return []
    except PermissionError:
        pass
    members = []
    for proc in psutil.process_iter(["status"]):
        try:
            if proc.info["status"] not in _GONE and os.getpgid(proc.pid) == pgid:
                members.append(proc.pid)
        except (OSError, psutil.Error):
            continue
    return sorted(members)


def group_alive(pgid: int) -> bool:
    """Has process group ``pgid`` a live member? Reaps its leader if that is our exited child."""
    reap(pgid)
    return bool(group_members(pgid))


def find_group_leaders(*needles: str) -> list[int]:
    """Group leaders whose command line (arguments joined by NUL) contains every needle."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            line = "\0".join(proc.info["cmdline"] or ())
            if all(n in line for n in needles) and os.getpgid(proc.pid) == proc.pid:
                found.append(proc.pid)
        except (OSError, psutil.Error):
            continue
    return sorted(found)


def send_signal(pid: int, sig: int, *, group: bool = True) -> bool:
    """Send ``sig`` to process group ``pid`` (or, ``group=False``, the process alone).

    False if there was nothing to signal.
    """
    try:
        if group:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        return False
    return True


def stop_groups(
    pgids: Sequence[int],
    *,
    grace: float = 10.0,
    kill_timeout: float = 5.0,
    what: str = "process group",
) -> None:
    """SIGTERM every group at once, SIGKILL those still alive after ``grace``, and wait for all.

    Returns once no group has a live member; reaps leaders that are our children. Idempotent:
    a group already gone is skipped. Raises :class:`~mlops_kit.errors.StopFailed` with the
    groups still alive ``kill_timeout`` seconds after SIGKILL. ``what`` names a group in the
    warning logged before SIGKILL.
    """
    pending = list(dict.fromkeys(pgids))
    for pgid in pending:
        send_signal(pgid, signal.SIGTERM)
    pending = _wait_gone(pending, grace)
    for pgid in pending:
        logger.warning("%s %d did not stop in %.0f s; killing it", what, pgid, grace)
        send_signal(pgid, signal.SIGKILL)
    pending = _wait_gone(pending, kill_timeout)
    for pgid in pgids:
        if pgid not in pending:
            forget(pgid)
    if pending:
        raise StopFailed(pending)


def stop_group(pgid: int, *, grace: float = 10.0, kill_timeout: float = 5.0) -> bool:
    """:func:`stop_groups` of one group; True if it had a live member, False if already gone."""
    if not group_alive(pgid):
        forget(pgid)
        return False
    stop_groups([pgid], grace=grace, kill_timeout=kill_timeout)
    return True


def _wait_gone(pgids: list[int], timeout: float) -> list[int]:
    """Wait until no group in ``pgids`` has a live member; return those that still have one."""
    pending = list(pgids)

    def gone() -> bool:
        pending[:] = [pgid for pgid in pending if group_alive(pgid)]
        return not pending

    with contextlib.suppress(WaitTimeout):
        wait_until(gone, timeout=timeout, interval=0.05, what="process groups to exit")
    return pending

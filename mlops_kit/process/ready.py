"""Waiting for a server to answer, noticing when its process dies first."""

from __future__ import annotations

import http.client
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from mlops_kit.errors import ProcessExited, WaitTimeout
from mlops_kit.process.files import log_tail
from mlops_kit.process.groups import pid_alive
from mlops_kit.process.spawn import exit_code
from mlops_kit.process.wait import wait_until


def http_ok(url: str, *, timeout: float = 2.0) -> bool:
    """Does ``GET url`` answer 200 within ``timeout`` seconds? Never raises; no proxies."""
    parts = urlsplit(url)
    connection = (
        http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    )
    try:
        conn = connection(parts.hostname or "", parts.port, timeout=timeout)
    except (ValueError, OSError):
        return False
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        conn.request("GET", path)
        return conn.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def wait_ready(
    ready: str | Callable[[], bool],
    *,
    pid: int,
    timeout: float,
    interval: float = 0.1,
    alive: Callable[[], bool] | None = None,
    log: Path | None = None,
    log_offset: int = 0,
    what: str = "the server",
) -> float:
    """Block until ``ready`` holds; return the seconds it took.

    ``ready`` is a URL (ready when ``GET`` answers 200, see :func:`http_ok`) or a callable.
    Each round first checks that process ``pid`` is alive (``alive``, default
    :func:`~mlops_kit.process.pid_alive`), then ``ready``. Raises
    :class:`~mlops_kit.errors.ProcessExited` (with its exit code when it is our child, and the
    last lines of ``log`` after ``log_offset``) when the process dies first, and
    :class:`~mlops_kit.errors.WaitTimeout` (with the log's last lines too) after ``timeout``
    seconds. The caller stops the process on either: this function never signals it.
    """
    if isinstance(ready, str):
        url = ready
        probe: Callable[[], bool] = lambda: http_ok(url, timeout=1.0)  # noqa: E731
    else:
        probe = ready
    is_alive = alive if alive is not None else (lambda: pid_alive(pid))
    began = time.monotonic()

    def answered() -> bool:
        if not is_alive():
            tail = log_tail(log, offset=log_offset) if log is not None else ""
            raise ProcessExited(what, exit_code(pid), str(log) if log else None, tail)
        return probe()

    try:
        wait_until(answered, timeout=timeout, interval=interval, what=f"{what} to answer")
    except WaitTimeout:
        detail = f"; last lines of {log}:\n{log_tail(log, offset=log_offset)}" if log else ""
        raise WaitTimeout(f"{what} to answer", timeout, detail) from None
    return time.monotonic() - began

"""Files shared between processes: atomic writes, an flock, and reading the end of a log."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

from mlops_kit.errors import LockTimeout, WaitTimeout
from mlops_kit.process.wait import wait_until

LOG_TAIL_BYTES = 16384
"""At most this much of the end of a log is read for :func:`log_tail`."""


def write_text(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` atomically: a reader sees the old file or the new, whole.

    Writes a temporary file beside ``path`` (unique per writer, so concurrent writers never
    share one) and renames it over ``path``; creates the parent directories.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    # os.open with 0o666 honours the umask, as a plain open() of the file would.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json(path: Path, data: object) -> None:
    """:func:`write_text` of ``data`` as JSON, indented by two, with a final newline."""
    write_text(path, json.dumps(data, indent=2) + "\n")


def secret_file(path: Path, make: Callable[[], str]) -> str:
    """The secret in ``path`` (0600), created by ``make`` on first use; races keep one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    value = make()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    return value


@contextlib.contextmanager
def locked(path: Path, *, timeout: float | None = None, interval: float = 0.01) -> Iterator[None]:
    """Hold an exclusive ``flock`` on the file ``path`` (created, with its directory, if need be).

    Excludes other processes and other threads of this one alike (each holder opens the file
    afresh). ``timeout=None`` waits as long as it takes; otherwise
    :class:`~mlops_kit.errors.LockTimeout` is raised after ``timeout`` seconds. Not re-entrant:
    a thread that takes a lock it holds waits for itself.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        if timeout is None:
            fcntl.flock(handle, fcntl.LOCK_EX)
        else:

            def acquired() -> bool:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    return False
                return True

            try:
                wait_until(acquired, timeout=timeout, interval=interval, what=f"lock {path}")
            except WaitTimeout:
                raise LockTimeout(str(path), timeout) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def log_size(path: Path) -> int:
    """Bytes in ``path`` now (0 if it does not exist): an offset for :func:`log_tail`."""
    try:
        return path.stat().st_size
    except OSError:
        return 0


def log_tail(path: Path, lines: int = 25, *, offset: int = 0) -> str:
    """The last ``lines`` lines of the log at ``path`` after byte ``offset``; ``(no log)`` if none.

    Reads at most the last :data:`LOG_TAIL_BYTES` bytes; undecodable bytes are replaced.
    """
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(handle.tell() - LOG_TAIL_BYTES, offset, 0))
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])

"""Start a command in a session of its own, its output appended to a log; remember the child.

The children started here are kept (by pid) for as long as they are of interest, so that they
are reaped when they exit (no zombies), their exit code can be told, and ``Popen`` does not
warn about a child still running when it is garbage-collected.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

_children: dict[int, subprocess.Popen[bytes]] = {}


def spawn(
    command: Sequence[str],
    *,
    log: Path | None = None,
    what: str | None = None,
    cwd: Path | str | None = None,
    env: Mapping[str, str] | None = None,
    stdin: int | IO[Any] | None = subprocess.DEVNULL,
    stdout: int | IO[Any] | None = None,
    stderr: int | IO[Any] | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``command`` as the leader of a new session and process group (pgid == pid).

    With ``log``, stdout and stderr are both appended to that file (created with its
    directory), after a line ``--- mlops-kit <UTC time>: starting <what>``; without it they go
    to ``stdout``/``stderr`` as ``subprocess.Popen`` takes them (e.g. ``subprocess.PIPE``).
    ``env`` replaces the environment when given. The child is remembered until
    :func:`forget` (which :func:`~mlops_kit.process.stop_groups` calls): stop it with
    :func:`~mlops_kit.process.stop_groups`, its group is not this process's.
    """
    if log is None:
        proc = _popen(command, cwd, env, stdin, stdout, stderr)
    else:
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as handle:
            if what is not None:
                stamp = datetime.now(UTC).isoformat(timespec="seconds")
                handle.write(f"--- mlops-kit {stamp}: starting {what}\n".encode())
                handle.flush()
            proc = _popen(command, cwd, env, stdin, handle, subprocess.STDOUT)
    _children[proc.pid] = proc
    return proc


def _popen(
    command: Sequence[str],
    cwd: Path | str | None,
    env: Mapping[str, str] | None,
    stdin: int | IO[Any] | None,
    stdout: int | IO[Any] | None,
    stderr: int | IO[Any] | None,
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(  # noqa: S603 - the caller's command, never through a shell
        list(command),
        cwd=cwd,
        env=None if env is None else dict(env),
        stdin=stdin,
        stdout=stdout,
        stderr=stderr,
        start_new_session=True,
    )


def child(pid: int) -> subprocess.Popen[bytes] | None:
    """The ``Popen`` of ``pid`` if :func:`spawn` started it (and it is not forgotten)."""
    return _children.get(pid)


def exit_code(pid: int) -> int | None:
    """The exit code of ``pid`` if it is a child of ours that has exited, else None."""
    proc = _children.get(pid)
    return None if proc is None else proc.poll()


def reap(pid: int) -> None:
    """Collect ``pid`` if it is an exited child of this process, so it is no zombie."""
    proc = _children.get(pid)
    if proc is not None:
        proc.poll()
        return
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def forget(pid: int) -> None:
    """Stop remembering the child ``pid`` (reaping it first if it has exited)."""
    proc = _children.pop(pid, None)
    if proc is not None:
        proc.poll()

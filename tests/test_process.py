"""The process layer against real processes: sleepers, a tiny http.server on loopback, flocks."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mlops_kit import process
from mlops_kit.errors import (
    LockTimeout,
    ProcessError,
    ProcessExited,
    StopFailed,
    ToolkitError,
    WaitTimeout,
)

HOST = "127.0.0.1"


def python(code: str, *args: str) -> list[str]:
    return [sys.executable, "-c", code, *args]


@pytest.fixture
def spawned() -> Iterator[list[int]]:
    """Pgids to stop however the test ends."""
    pgids: list[int] = []
    yield pgids
    process.stop_groups(pgids, grace=1.0)


def until_in_log(log: Path, text: str, timeout: float = 10.0) -> None:
    process.wait_until(
        lambda: log.is_file() and text in log.read_text(), timeout=timeout, what=repr(text)
    )


# -- wait_until ------------------------------------------------------------------------------


def test_wait_until_returns_the_first_truthy_value() -> None:
    answers = iter([0, None, "", "done"])
    assert process.wait_until(lambda: next(answers), timeout=5, interval=0.001) == "done"


def test_wait_until_times_out_with_a_toolkit_error_and_always_tries_once() -> None:
    calls: list[float] = []
    began = time.monotonic()
    with pytest.raises(WaitTimeout, match=r"timed out after 0.2 s waiting for the moon") as caught:
        process.wait_until(lambda: calls.append(1), timeout=0.2, interval=0.05, what="the moon")
    assert 0.2 <= time.monotonic() - began < 1.0
    assert isinstance(caught.value, ToolkitError) and isinstance(caught.value, ProcessError)
    assert caught.value.timeout == 0.2 and len(calls) >= 3
    assert process.wait_until(lambda: 7, timeout=0) == 7
    with pytest.raises(ZeroDivisionError):
        process.wait_until(lambda: 1 / 0, timeout=5)


# -- files: atomic writes, the lock, log tails ---------------------------------------------------


def test_atomic_writes_leave_a_whole_file_and_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "state.json"
    process.write_json(path, {"a": 1})
    assert path.read_text() == '{\n  "a": 1\n}\n'
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask

    process.write_json(path, {"writer": 0})  # the readers below may look before any writer
    stop = threading.Event()
    seen: list[object] = []

    def writer(n: int) -> None:
        while not stop.is_set():
            process.write_json(path, {"writer": n, "pad": "x" * 5000})

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    try:
        for _ in range(200):
            seen.append(json.loads(path.read_text())["writer"])  # never half a file
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert set(seen) <= {0, 1, 2}
    assert sorted(p.name for p in path.parent.iterdir()) == ["state.json"]
    process.write_text(path, "plain")
    assert path.read_text() == "plain"


def test_the_lock_excludes_other_processes_and_threads(tmp_path: Path, spawned: list[int]) -> None:
    lock = tmp_path / "sub" / ".lock"
    lock.parent.mkdir()
    log = tmp_path / "holder.log"
    holder = process.spawn(
        python(
            "import fcntl, sys, time\n"
            "handle = open(sys.argv[1], 'a'); fcntl.flock(handle, fcntl.LOCK_EX)\n"
            "print('held', flush=True); time.sleep(float(sys.argv[2]))",
            str(lock),
            "1.0",
        ),
        log=log,
    )
    spawned.append(holder.pid)
    until_in_log(log, "held")
    began = time.monotonic()
    with (
        pytest.raises(LockTimeout, match="the lock .*sub/.lock") as caught,
        process.locked(lock, timeout=0.2),
    ):
        pass
    assert caught.value.path == str(lock) and time.monotonic() - began < 0.9
    with process.locked(lock, timeout=10):  # the holder lets go when it exits, after 1 s
        assert time.monotonic() - began >= 0.5

    inside: list[int] = []

    def worker(n: int) -> None:
        with process.locked(lock):
            inside.append(n)
            time.sleep(0.02)
            inside.append(n)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(inside[i] == inside[i + 1] for i in range(0, len(inside), 2))


def test_log_tail_and_size(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    assert process.log_tail(log) == "(no log)" and process.log_size(log) == 0
    log.write_text("".join(f"line {i}\n" for i in range(100)))
    assert process.log_tail(log, 3) == "line 97\nline 98\nline 99"
    offset = process.log_size(log)
    with log.open("a") as handle:
        handle.write("new\n")
    assert process.log_tail(log, 25, offset=offset) == "new"


# -- ports ---------------------------------------------------------------------------------------


def test_free_ports_are_distinct_and_bindable() -> None:
    ports = process.free_ports(HOST, 3)
    assert len(set(ports)) == 3
    with socket.socket() as sock:
        sock.bind((HOST, ports[0]))
        sock.listen()
        assert not process.port_free(HOST, ports[0])
    assert process.port_free(HOST, ports[0])
    assert len(process.free_ports(HOST)) == 1
    with pytest.raises(ValueError, match="at least 1"):
        process.free_ports(HOST, 0)


# -- records -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Info:
    pid: int
    port: int
    note: str | None = None


def test_records_round_trip_and_tolerate_missing_or_corrupt_files(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "server.json"
    assert process.read_record(path, Info) is None
    process.write_record(path, Info(pid=1, port=2))
    assert json.loads(path.read_text()) == {"pid": 1, "port": 2, "note": None}
    assert process.read_record(path, Info) == Info(1, 2)
    with caplog.at_level(logging.WARNING):
        for junk in ("{not json", "[1, 2]", '{"pid": 1, "unknown": 3}'):
            path.write_text(junk)
            assert process.read_record(path, Info) is None
            assert process.ProcessRecord.read(path) is None or junk.startswith('{"pid"')
    assert "ignoring unreadable server record" in caplog.text

    record = process.ProcessRecord(
        pid=5, pgid=5, host=HOST, port=8080, log="/x.log", extra={"version": "3"}
    )
    record.write(path)
    data = json.loads(path.read_text())
    assert data["version"] == "3" and data["port"] == 8080 and "extra" not in data
    assert data["started_at"].endswith("+00:00")
    assert process.ProcessRecord.read(path) == record


# -- spawn, ready, stop ----------------------------------------------------------------------


def test_spawn_runs_in_its_own_group_with_env_cwd_and_an_appended_log(
    tmp_path: Path, spawned: list[int]
) -> None:
    log = tmp_path / "logs" / "child.log"
    log.parent.mkdir()
    log.write_text("earlier run\n")
    code = (
        "import os, sys\n"
        "print('cwd', os.getcwd()); print('env', os.environ['PROBE'])\n"
        "print('oops', file=sys.stderr); print('pgid', os.getpgid(0) == os.getpid())"
    )
    proc = process.spawn(
        python(code), log=log, what="a probe", cwd=tmp_path, env={**os.environ, "PROBE": "42"}
    )
    spawned.append(proc.pid)
    assert proc.wait(timeout=10) == 0
    text = log.read_text()
    assert text.startswith("earlier run\n--- mlops-kit ") and ": starting a probe\n" in text
    for line in (f"cwd {tmp_path}", "env 42", "oops", "pgid True"):
        assert line in text
    assert process.exit_code(proc.pid) == 0 and process.child(proc.pid) is proc
    assert not process.pid_alive(proc.pid) and not process.group_alive(proc.pid)
    assert process.stop_group(proc.pid) is False  # already gone: nothing to do
    assert process.child(proc.pid) is None  # forgotten


def test_wait_ready_on_a_real_http_server_then_stop_leaves_nothing(
    tmp_path: Path, spawned: list[int]
) -> None:
    (tmp_path / "index.html").write_text("hi")
    port = process.free_ports(HOST)[0]
    log = tmp_path / "http.log"
    command = [sys.executable, "-m", "http.server", "--bind", HOST, str(port)]
    proc = process.spawn(command, log=log, what="http.server", cwd=tmp_path)
    spawned.append(proc.pid)
    url = f"http://{HOST}:{port}/index.html"
    took = process.wait_ready(url, pid=proc.pid, timeout=15, interval=0.05, log=log)
    assert 0 <= took < 15 and process.http_ok(url)
    assert not process.http_ok(f"http://{HOST}:{port}/missing")
    assert process.pid_alive(proc.pid, argument="http.server")
    assert process.group_members(proc.pid) == [proc.pid]
    assert process.find_group_leaders(str(port), "http.server") == [proc.pid]
    assert "http.server" in (process.command_line(proc.pid) or [])

    process.stop_groups([proc.pid], grace=5)

    assert proc.returncode is not None  # reaped: no zombie left
    assert process.group_members(proc.pid) == [] and not process.http_ok(url)
    process.stop_groups([proc.pid], grace=5)  # idempotent
    assert process.stop_group(proc.pid) is False


def test_wait_ready_notices_an_early_exit_and_quotes_the_log(
    tmp_path: Path, spawned: list[int]
) -> None:
    log = tmp_path / "crash.log"
    log.write_text("old line from an earlier run\n")
    offset = process.log_size(log)
    proc = process.spawn(python("print('boom: no config'); raise SystemExit(3)"), log=log)
    spawned.append(proc.pid)
    began = time.monotonic()
    with pytest.raises(ProcessExited) as caught:
        process.wait_ready(
            lambda: False, pid=proc.pid, timeout=15, log=log, log_offset=offset, what="crasher"
        )
    assert time.monotonic() - began < 5
    error = caught.value
    assert error.returncode == 3 and "boom: no config" in error.tail
    assert "old line" not in error.tail
    assert str(error).startswith(f"crasher exited with code 3 while starting; last lines of {log}")


def test_wait_ready_times_out_with_the_log_tail(tmp_path: Path, spawned: list[int]) -> None:
    log = tmp_path / "slow.log"
    proc = process.spawn(
        python("print('still loading', flush=True); import time; time.sleep(30)"), log=log
    )
    spawned.append(proc.pid)
    until_in_log(log, "still loading")
    with pytest.raises(WaitTimeout, match="(?s)slowpoke to answer.*still loading"):
        process.wait_ready(lambda: False, pid=proc.pid, timeout=0.3, log=log, what="slowpoke")
    assert process.pid_alive(proc.pid)  # waiting never signals the process


def test_stop_kills_a_group_that_ignores_sigterm_with_its_children(
    tmp_path: Path, spawned: list[int], caplog: pytest.LogCaptureFixture
) -> None:
    log = tmp_path / "stubborn.log"
    code = (
        "import signal, subprocess, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "kid = subprocess.Popen([sys.executable, '-c', "
        "'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)'])\n"
        "print('kid', kid.pid, flush=True); time.sleep(60)"
    )
    proc = process.spawn(python(code), log=log)
    spawned.append(proc.pid)
    until_in_log(log, "kid ")
    process.wait_until(lambda: len(process.group_members(proc.pid)) == 2, timeout=10)
    kid = int(log.read_text().split("kid ")[1].split()[0])

    began = time.monotonic()
    with caplog.at_level(logging.WARNING):
        process.stop_groups([proc.pid], grace=0.3, what="stubborn")
    assert time.monotonic() - began < 5
    assert f"stubborn {proc.pid} did not stop in 0 s; killing it" in caplog.text
    assert proc.returncode == -signal.SIGKILL
    assert process.group_members(proc.pid) == [] and not process.pid_alive(kid)


def test_pid_alive_checks_the_command_line_of_a_process_not_ours(
    tmp_path: Path, spawned: list[int]
) -> None:
    marker = str(tmp_path / "marker")
    proc = process.spawn(python("import time; time.sleep(30)", marker))
    spawned.append(proc.pid)
    process.forget(proc.pid)  # as if another toolkit process had started it
    # Popen returns once exec began; the kernel fills in the command line a moment later.
    process.wait_until(lambda: process.pid_alive(proc.pid, argument=marker), timeout=10)
    assert not process.pid_alive(proc.pid, argument=marker + "-other")  # a reused pid
    assert process.send_signal(proc.pid, signal.SIGKILL, group=False)
    process.wait_until(lambda: not process.pid_alive(proc.pid), timeout=10)  # reaps it
    assert not process.send_signal(proc.pid, signal.SIGKILL)
    with pytest.raises(ChildProcessError):
        os.waitpid(proc.pid, os.WNOHANG)  # already collected: no zombie


def test_stop_failed_is_a_process_error() -> None:
    error = StopFailed([12, 34])
    assert isinstance(error, ProcessError) and error.pgids == [12, 34]
    assert str(error) == "could not stop process group(s) 12, 34"

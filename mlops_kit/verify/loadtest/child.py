"""The load generator's process, seen from the parent: spawn it, follow it, kill it, read it.

Importing locust monkeypatches the whole process through gevent, which hangs a Jupyter kernel, so
the generator (:mod:`.generator`) always runs in a child that patches first and imports second.
The plan goes in on stdin; progress lines and then every sample (an ``.npz`` archive) come out on
stdout, diagnostics on stderr. No files.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import selectors
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mlops_kit.errors import LoadGeneratorFailed, LoadTestError, StopFailed, WaitTimeout
from mlops_kit.process import spawn, stop_group, wait_until
from mlops_kit.settings_loadtest import LoadLimits
from mlops_kit.verify.loadtest.results import LoadTestResult
from mlops_kit.verify.loadtest.spec import LoadSpec

if TYPE_CHECKING:
    from tqdm import tqdm

# Started with gevent patched before anything else is imported (ssl, threading, sockets).
_CHILD = (
    "from gevent import monkey; monkey.patch_all()\n"
    "import sys\n"
    "from mlops_kit.verify.loadtest.generator import main\n"
    "sys.exit(main())\n"
)
_STARTUP_ALLOWANCE = 30.0
"""Seconds the child may take to import locust and report in, on top of the run's own bound."""
_KILL_GRACE = 1.0
"""Seconds a generator being killed gets between SIGTERM and SIGKILL."""


def hard_deadline_s(spec: LoadSpec) -> float:
    """Seconds after which the parent kills the generator: the run's bound plus allowances."""
    return spec.duration_s + (spec.timeout_s or LoadLimits().request_timeout_s) + _STARTUP_ALLOWANCE


def generate(spec: LoadSpec, progress: bool) -> LoadTestResult:
    """Run the generator for a checked ``spec`` and aggregate its samples; blocks until it ends.

    LoadGeneratorFailed if it exits with an error or sends no samples; LoadTestError if it
    overstays :func:`hard_deadline_s` (it is killed, with its whole process group).
    """
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    # The child must import this very package, also from a checkout that is not installed.
    package_root = str(Path(__file__).resolve().parents[3])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    proc = spawn(
        [sys.executable, "-c", _CHILD],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.write(json.dumps(asdict(spec)).encode())
            proc.stdin.close()
        samples, log = _follow(proc, spec, progress)
    finally:
        _kill(proc)
    if proc.returncode != 0 or samples is None:
        tail = "\n".join(log.decode(errors="replace").strip().splitlines()[-15:])
        raise LoadGeneratorFailed(proc.returncode, tail)
    return _read_samples(spec, samples)


def _follow(
    proc: subprocess.Popen[bytes], spec: LoadSpec, progress: bool
) -> tuple[bytes | None, bytes]:
    """Show the child's progress until it exits; give up past the hard deadline.

    Returns the samples it sent (None if it sent none) and the end of its stderr.
    """
    from tqdm import tqdm

    bar = tqdm(
        total=round(spec.duration_s, 1),
        unit="s",
        desc=f"load {spec.users} users",
        disable=not progress,
        file=sys.stdout,
        leave=True,
        bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total:.1f} s{postfix}",
        mininterval=0.5,
    )
    reader = _Reader(proc, bar)
    try:
        # No pause between rounds: each round blocks in select (or wait) for a while itself.
        wait_until(reader.step, timeout=hard_deadline_s(spec), interval=0.0, what="the generator")
    except WaitTimeout:
        if reader.open_streams:
            raise LoadTestError(
                f"the load generator did not stop within {hard_deadline_s(spec):.0f} s; killed it"
            ) from None
        raise LoadTestError("the load generator closed its output but did not exit") from None
    finally:
        reader.close()
        bar.close()
    return reader.samples(), reader.log


class _Reader:
    """The child's stdout (progress lines, then the samples) and stderr, read as they come."""

    def __init__(self, proc: subprocess.Popen[bytes], bar: tqdm[Any]) -> None:
        assert proc.stdout is not None and proc.stderr is not None
        self.proc = proc
        self.bar = bar
        self.selector = selectors.DefaultSelector()
        self.selector.register(proc.stdout, selectors.EVENT_READ)
        self.selector.register(proc.stderr, selectors.EVENT_READ)
        self.open_streams = 2
        self.out, self.log = b"", b""
        self.samples_size: int | None = None
        self.refresh_every = 0.5 if sys.stdout.isatty() else 1.0
        self.shown = 0.0

    def step(self) -> bool:
        """Read for up to 0.2 s; True once both streams are closed and the child has exited."""
        if not self.open_streams:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=0.2)
            return self.proc.returncode is not None
        for key, _ in self.selector.select(timeout=0.2):
            chunk = os.read(key.fd, 1 << 20)
            if not chunk:
                self.selector.unregister(key.fileobj)
                self.open_streams -= 1
            elif key.fileobj is self.proc.stderr:
                self.log = (self.log + chunk)[-20_000:]
            else:
                self.out += chunk
        while self.samples_size is None and b"\n" in self.out:
            line, self.out = self.out.split(b"\n", 1)
            self._progress(line)
        # A notebook keeps every refresh as an output line in the saved file: refresh seldom.
        if time.monotonic() - self.shown >= self.refresh_every:
            self.bar.refresh()
            self.shown = time.monotonic()
        return False

    def _progress(self, line: bytes) -> None:
        """Show one progress line, or note the size of the samples that follow."""
        with contextlib.suppress(ValueError, KeyError, TypeError):
            state = json.loads(line)
            if "samples" in state:
                self.samples_size = int(state["samples"])
                return
            self.bar.n = min(round(float(state["t"]), 1), self.bar.total)
            rps = state["n"] / state["t"] if state["t"] > 0 else 0.0
            self.bar.set_postfix_str(
                f"{state['u']} users, {state['n']} requests, {rps:.0f} req/s, {state['e']} errors",
                refresh=False,
            )

    def samples(self) -> bytes | None:
        """The samples the child sent, whole; None if it sent none (or not all)."""
        if self.samples_size is None or len(self.out) < self.samples_size:
            return None
        return self.out[: self.samples_size]

    def close(self) -> None:
        self.selector.close()


def _kill(proc: subprocess.Popen[bytes]) -> None:
    """Stop the child's process group if anything of it still runs; close its pipes."""
    # In a finally clause: a group that survives SIGKILL must not hide the error on its way out.
    with contextlib.suppress(StopFailed):
        stop_group(proc.pid, grace=_KILL_GRACE, kill_timeout=10.0)
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()


def _read_samples(spec: LoadSpec, samples: bytes) -> LoadTestResult:
    with np.load(io.BytesIO(samples), allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
        return LoadTestResult.from_samples(
            spec,
            start=data["start"],
            latency=data["latency"],
            status=data["status"],
            kinds=list(meta["kinds"]),
            elapsed_s=meta["elapsed_s"],
            stopped_by=meta["stopped_by"],
            started_at=meta["started_at"],
            users_at=[(float(t), int(u)) for t, u in meta["users_at"]],
            generator_cpu_s=meta.get("cpu_s"),
        )

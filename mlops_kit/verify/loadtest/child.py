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
import signal
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from mlops_kit.errors import LoadGeneratorFailed, LoadTestError
from mlops_kit.settings import LoadLimits
from mlops_kit.verify.loadtest.results import LoadTestResult
from mlops_kit.verify.loadtest.spec import LoadSpec

# Started with gevent patched before anything else is imported (ssl, threading, sockets).
_CHILD = (
    "from gevent import monkey; monkey.patch_all()\n"
    "import sys\n"
    "from mlops_kit.verify.loadtest.generator import main\n"
    "sys.exit(main())\n"
)
_STARTUP_ALLOWANCE = 30.0
"""Seconds the child may take to import locust and report in, on top of the run's own bound."""


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
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=True,
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
    """Show the child's progress until it exits; kill it past the hard deadline.

    Returns the samples it sent (None if it sent none) and the end of its stderr.
    """
    from tqdm import tqdm

    assert proc.stdout is not None and proc.stderr is not None
    deadline = time.monotonic() + hard_deadline_s(spec)
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
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    selector.register(proc.stderr, selectors.EVENT_READ)
    out, log = b"", b""
    samples_size: int | None = None
    open_streams = 2
    refresh_every = 0.5 if sys.stdout.isatty() else 1.0
    shown = 0.0
    try:
        while open_streams:
            if time.monotonic() > deadline:
                raise LoadTestError(
                    f"the load generator did not stop within {hard_deadline_s(spec):.0f} s; "
                    "killed it"
                )
            for key, _ in selector.select(timeout=0.2):
                chunk = os.read(key.fd, 1 << 20)
                if not chunk:
                    selector.unregister(key.fileobj)
                    open_streams -= 1
                elif key.fileobj is proc.stderr:
                    log = (log + chunk)[-20_000:]
                else:
                    out += chunk
            while samples_size is None and b"\n" in out:
                line, out = out.split(b"\n", 1)
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    state = json.loads(line)
                    if "samples" in state:
                        samples_size = int(state["samples"])
                        break
                    bar.n = min(round(float(state["t"]), 1), bar.total)
                    rps = state["n"] / state["t"] if state["t"] > 0 else 0.0
                    bar.set_postfix_str(
                        f"{state['u']} users, {state['n']} requests, {rps:.0f} req/s, "
                        f"{state['e']} errors",
                        refresh=False,
                    )
            # A notebook keeps every refresh as an output line in the saved file: refresh seldom.
            if time.monotonic() - shown >= refresh_every:
                bar.refresh()
                shown = time.monotonic()
        proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
    except subprocess.TimeoutExpired:
        raise LoadTestError("the load generator closed its output but did not exit") from None
    finally:
        selector.close()
        bar.close()
    if samples_size is None or len(out) < samples_size:
        return None, log
    return out[:samples_size], log


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)
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

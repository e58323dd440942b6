"""Shared pieces of the benchmarks: a trained model, free ports, processes, wrk."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mlops_kit.errors import WaitTimeout
from mlops_kit.process import free_ports, http_ok, spawn, stop_group, wait_until


@dataclass
class LoadResult:
    name: str
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int

    def row(self) -> str:
        return (
            f"{self.name:<28} {self.rps:>9.1f} {self.p50_ms:>8.1f} {self.p99_ms:>8.1f} "
            f"{self.errors:>7d} {self.requests:>9d}"
        )


HEADER = f"{'server':<28} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'requests':>9}"


def free_port() -> int:
    return free_ports("127.0.0.1")[0]


@contextlib.contextmanager
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="mlops-bench-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def process(
    args: list[str], log: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen]:
    proc = spawn(args, log=log, env={**os.environ, **(env or {})})
    try:
        yield proc
    finally:
        stop_group(proc.pid, grace=10.0)


def wait_http(url: str, timeout: float = 90.0) -> None:
    try:
        wait_until(lambda: http_ok(url, timeout=2), timeout=timeout, interval=0.2, what=url)
    except WaitTimeout:
        raise TimeoutError(f"{url} not ready after {timeout}s") from None


def train_model(state_dir: Path):
    """Register one wine model in a fresh project (its project file beside ``state_dir``);
    returns (project, version, local path, data)."""
    from mlops_kit.project import Project
    from mlops_kit.registry.client import Registry
    from mlops_kit.train.training import load_dataset, train_and_register, training_params

    project_file = state_dir.parent / "mlops.yaml"
    project_file.parent.mkdir(parents=True, exist_ok=True)
    project_file.write_text(f"state_dir: {state_dir.name}\n")
    project = Project.load(project_file)
    data = load_dataset("wine")
    result = train_and_register(project, data, training_params(n_estimators=100))
    return project, result.version, Registry(project).local_path(result.version), data


def _field(pattern: str, out: str) -> str:
    """The first group of ``pattern`` (multiline) in wrk's output."""
    match = re.search(pattern, out, re.M)
    if match is None:
        raise RuntimeError(f"no {pattern!r} in wrk's output:\n{out}")
    return match.group(1)


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if match is None:
        raise ValueError(f"cannot read wrk's latency {text!r}")
    value, unit = match.groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1e3, "m": 6e4, "h": 3.6e6}[unit]


def wrk(
    name: str,
    url: str,
    body: dict,
    *,
    seconds: float,
    connections: int,
    threads: int = 1,
    tmp: Path,
) -> LoadResult:
    """Drive ``url`` with wrk (POST ``body``) and parse its summary.

    A two-second warm-up run goes first and is not counted, for every server alike.
    """
    script = tmp / f"{name.replace(' ', '_')}.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps(json.dumps(body))}\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    subprocess.run(
        ["wrk", "-t1", f"-c{connections}", "-d2s", "-s", str(script), url],
        capture_output=True,
        timeout=60,
        check=True,
    )
    out = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{int(seconds)}s",
            "--latency",
            "--timeout",
            "10s",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    ).stdout
    requests = int(_field(r"(\d+) requests in", out))
    rps = float(_field(r"Requests/sec:\s+([\d.]+)", out))
    # Anchored to whole lines: the thread stats above also end in percentages ("76.50%").
    p50 = _ms(_field(r"^\s*50%\s+(\S+)\s*$", out))
    p99 = _ms(_field(r"^\s*99%\s+(\S+)\s*$", out))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    errors = int(non2xx.group(1)) if non2xx else 0
    if socket_errors:
        errors += sum(int(g) for g in socket_errors.groups())
    return LoadResult(name, requests, seconds, rps, p50, p99, errors)


def require_wrk() -> None:
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed for this benchmark: apt-get install wrk")

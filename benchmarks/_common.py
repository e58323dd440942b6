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
            f"{self.name:<36} {self.rps:>9.1f} {self.p50_ms:>8.1f} {self.p99_ms:>8.1f} "
            f"{self.errors:>7d} {self.requests:>9d}"
        )


HEADER = f"{'server':<36} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'requests':>9}"


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
    project_file.write_text(f"model_name: wine-classifier\nstate_dir: {state_dir.name}\n")
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


GRPC_INFER = "/inference.GRPCInferenceService/ModelInfer"
"""The Open Inference Protocol's gRPC method, as an HTTP/2 path."""


def grpc_message(body: dict, model_name: str) -> bytes:
    """A V2 JSON request as one gRPC ``ModelInfer`` message on the wire (length-prefixed)."""
    from mlserver.grpc.converters import ModelInferRequestConverter
    from mlserver.types import InferenceRequest

    request = ModelInferRequestConverter.from_types(
        InferenceRequest.model_validate(body), model_name=model_name, model_version=None
    )
    message = request.SerializeToString()
    return b"\x00" + len(message).to_bytes(4, "big") + message


def check_grpc(port: int, body: dict, model_name: str) -> None:
    """One ``ModelInfer`` call through a real gRPC client: the load below counts HTTP/2
    answers, so this checks they are answers (gRPC status OK, outputs present)."""
    import grpc
    from mlserver.grpc import dataplane_pb2 as pb
    from mlserver.grpc import dataplane_pb2_grpc as stubs

    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        request = pb.ModelInferRequest.FromString(grpc_message(body, model_name)[5:])
        reply = stubs.GRPCInferenceServiceStub(channel).ModelInfer(request, timeout=30)
    if not reply.outputs:
        raise RuntimeError(f"gRPC ModelInfer on port {port} answered without outputs: {reply}")


def h2load_grpc(
    name: str,
    port: int,
    body: dict,
    model_name: str,
    *,
    seconds: float,
    connections: int,
    tmp: Path,
) -> LoadResult:
    """Drive the gRPC ``ModelInfer`` of the server on ``port`` with h2load: ``connections``
    HTTP/2 connections, one call in flight on each (as wrk's connections), after a two-second
    warm-up. An answer counts as an error unless it is HTTP 200 (a gRPC error travels in the
    trailers, which :func:`check_grpc` checks once before)."""
    check_grpc(port, body, model_name)
    data = tmp / f"{name.replace(' ', '_')}.grpc"
    data.write_bytes(grpc_message(body, model_name))
    log = tmp / f"{name.replace(' ', '_')}.h2log"
    log.unlink(missing_ok=True)
    subprocess.run(
        [
            "h2load",
            "-t1",
            f"-c{connections}",
            "-m1",
            f"-D{int(seconds)}",
            "--warm-up-time=2",
            "-d",
            str(data),
            "-H",
            "content-type: application/grpc",
            "-H",
            "te: trailers",
            f"--log-file={log}",
            f"http://127.0.0.1:{port}{GRPC_INFER}",
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    )
    rows = [line.split("\t") for line in log.read_text().splitlines() if line.strip()]
    latencies = sorted(int(row[2]) / 1000.0 for row in rows)
    errors = sum(1 for row in rows if row[1] != "200")
    if not latencies:
        raise RuntimeError(f"h2load answered no request of {name}")

    def percentile(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))]

    return LoadResult(
        name, len(rows), seconds, len(rows) / seconds, percentile(0.5), percentile(0.99), errors
    )


def require_h2load() -> None:
    if shutil.which("h2load") is None:
        sys.exit("h2load is needed for the gRPC figures: apt-get install nghttp2-client")


def require_wrk() -> None:
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed for this benchmark: apt-get install wrk")

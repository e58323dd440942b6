"""Our load generator (locust, ``mlops_kit.verify.loadtest``) vs wrk against the same endpoint.

    .venv/bin/python benchmarks/loadgen.py [--seconds 8] [--connections 10 50] [--rounds 3]

One MLServer is started through the local target, as ``benchmarks/serving.py`` does. For each
concurrency, wrk and our generator take turns (``--rounds`` times each, so a busy neighbour on
the machine hurts both alike), with the same single-row V2 request over the same number of
connections — and the same headers: locust sends ``Accept-Encoding: gzip, deflate, br`` like most
HTTP clients, which sends MLServer's responses through its GZip middleware (more server CPU per
request even when the body is too small to compress), so wrk sends it too. Prints the median
req/s of each, the ratio ours / wrk, the client CPU each spent per request and how busy the
server was. The generator is not the bottleneck when the ratio is at least 0.9.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import HEADER, LoadResult, require_wrk, train_model, workdir

SAME_HEADERS = {"Content-Type": "application/json", "Accept-Encoding": "gzip, deflate, br"}
"""What our generator (locust's FastHttpSession) sends besides Host and Content-Length."""


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1e3, "m": 6e4}[unit]


def wrk(url: str, body: dict, *, seconds: int, connections: int, tmp: Path) -> LoadResult:
    """wrk POSTing ``body`` with :data:`SAME_HEADERS`, after an uncounted 2 s warm-up."""
    script = tmp / "post.lua"
    lines = ['wrk.method = "POST"', f"wrk.body = {json.dumps(json.dumps(body))}"]
    lines += [f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in SAME_HEADERS.items()]
    script.write_text("\n".join(lines) + "\n")
    base = ["wrk", "-t1", f"-c{connections}", "-s", str(script)]
    subprocess.run([*base, "-d2s", url], capture_output=True, timeout=60, check=True)
    out = subprocess.run(
        [*base, f"-d{seconds}s", "--latency", "--timeout", "10s", url],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    ).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    return LoadResult(
        "wrk",
        int(re.search(r"(\d+) requests in", out).group(1)),
        seconds,
        float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        _ms(re.search(r"^\s*50%\s+(\S+)\s*$", out, re.M).group(1)),
        _ms(re.search(r"^\s*99%\s+(\S+)\s*$", out, re.M).group(1)),
        (int(errors.group(1)) if errors else 0)
        + (sum(int(g) for g in sockets.groups()) if sockets else 0),
    )


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def process_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def ours(url: str, body: str, seconds: int, connections: int) -> tuple[LoadResult, float]:
    """Our generator's figures and the CPU it used during the load (its start-up excluded)."""
    from mlops_kit.verify.loadtest import LoadSpec, run_load

    result = run_load(
        LoadSpec(url, body, users=connections, spawn_rate=1000, duration_s=seconds),
        progress=False,
    )
    figures = LoadResult(
        "mlops-kit (locust)",
        result.requests,
        result.elapsed_s,
        result.rps,
        result.latency_ms["p50"] or 0.0,
        result.latency_ms["p99"] or 0.0,
        result.failures,
    )
    return figures, result.generator_cpu_s or 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, nargs="+", default=[10, 50])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    require_wrk()

    from mlops_kit.gitops.deploy import spec_for
    from mlops_kit.targets import for_environment
    from mlops_kit.verify import v2

    with workdir() as tmp:
        project, version, _, data = train_model(tmp / "state")
        body = v2.encode_dataframe(data.X_test.head(1))
        target = for_environment(project.settings, "staging")
        target.apply(spec_for(project, "staging", version))
        server_pid = target.server(project.model_name).pid
        url = target.endpoint(project.model_name) + "/infer"
        print(f"{os.cpu_count()} CPUs, load average before: {os.getloadavg()[0]:.2f}")
        table = []
        try:
            for connections in args.connections:
                runs: dict[str, list[tuple[LoadResult, float, float]]] = {"wrk": [], "ours": []}
                for _ in range(args.rounds):
                    for name in ("wrk", "ours"):
                        cpu, server = children_cpu(), process_cpu(server_pid)
                        if name == "wrk":
                            result = wrk(
                                url,
                                body,
                                seconds=args.seconds,
                                connections=connections,
                                tmp=tmp,
                            )
                            # wrk's 2 s warm-up run is not in its figures: nor in its CPU shares.
                            share = args.seconds / (args.seconds + 2)
                            client = (children_cpu() - cpu) * share
                        else:
                            result, client = ours(url, json.dumps(body), args.seconds, connections)
                            share = 1.0  # the server idles while the generator starts
                        busy = (process_cpu(server_pid) - server) * share / args.seconds
                        runs[name].append((result, client, busy))
                        print(
                            f"  c={connections:<3} {name:<5} {result.rps:8.1f} req/s  "
                            f"p99 {result.p99_ms:6.1f} ms  errors {result.errors}  "
                            f"client {client / args.seconds:4.0%} / server {busy:4.0%} of a core",
                            flush=True,
                        )
                table.append((connections, runs))
        finally:
            target.delete(project.model_name)

    print(f"\nload average after: {os.getloadavg()[0]:.2f}")
    print(f"{args.seconds} s per run, {args.rounds} rounds each, one-row V2 requests, medians")
    print(f"{'c':>4} " + HEADER + f" {'client µs CPU/req':>18} {'server CPU':>10}")
    verdicts = []
    for connections, runs in table:
        medians = {}
        for name, found in runs.items():
            best = sorted(found, key=lambda r: r[0].rps)[len(found) // 2]
            result = best[0]
            cpu_per_request = statistics.median(c / r.requests * 1e6 for r, c, _ in found)
            server_busy = statistics.median(b for _, _, b in found)
            medians[name] = result.rps
            print(
                f"{connections:>4} "
                + result.row()
                + f" {cpu_per_request:>18.0f} {server_busy:>10.0%}"
            )
        ratio = medians["ours"] / medians["wrk"]
        verdicts.append(ratio)
        state = "ok" if ratio >= 0.9 else "BELOW 0.9: the generator is a bottleneck here"
        print(f"{'':>4} ours / wrk req/s ratio: {ratio:.2f} ({state})")
    sys.exit(0 if all(r >= 0.9 for r in verdicts) else 1)


if __name__ == "__main__":
    main()

"""Our local endpoint against stock MLServer at its best, MLflow's server, and the stack's floor.

    .venv/bin/python benchmarks/serving.py [--seconds 10] [--connections 50] [--rounds 3]

The same model and the same single-row request, driven by wrk on loopback, one server after
the other in each round:

- ours as configured (our runtime, micro-batching on), and ours with batching off;
- stock ``mlserver start`` with MLServer's own **adaptive batching** (``max_batch_size: 64,
  max_batch_time: 0.005``): the strongest stock configuration, and the baseline ratios are
  computed against; stock without batching for context;
- ``mlflow models serve`` (its native ``dataframe_split`` body);
- the floor: the same MLServer answering the same request with a model that does nothing.

The same request over the Open Inference Protocol's gRPC endpoint (``ModelInfer``), driven by
h2load with as many HTTP/2 connections, one call in flight on each, for ours, stock with
adaptive batching and the floor (``--no-grpc`` skips them).

Prints req/s, p50, p99 and errors of every server in every round, then the medians over the
rounds and the ratios ours / stock-best and ours / floor, over REST and over gRPC.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    HEADER,
    LoadResult,
    free_port,
    h2load_grpc,
    process,
    require_h2load,
    require_wrk,
    train_model,
    wait_http,
    workdir,
    wrk,
)

STOCK_BATCHING = {"max_batch_size": 64, "max_batch_time": 0.005}
"""MLServer's adaptive batching at the setting that measured fastest here (0.02 s was slower)."""

NOOP_MODEL = '''
from mlserver import MLModel
from mlserver.types import InferenceResponse, ResponseOutput


class NoOp(MLModel):
    """Answers every request with one fixed integer: the cost of the stack, not of a model."""

    async def predict(self, payload):
        output = ResponseOutput(name="predict", shape=[1], datatype="INT64", data=[0])
        return InferenceResponse(model_name=self.name, outputs=[output])
'''

OURS, OURS_UNBATCHED = "mlops-kit", "mlops-kit, batching off"
STOCK_BEST, STOCK_PLAIN = "stock mlserver, batching", "stock mlserver, no batching"
MLFLOW, FLOOR = "mlflow models serve", "floor: mlserver no-op model"
GRPC = " (gRPC)"
"""Appended to a server's name for its gRPC figures."""


def mlserver_dir(root: Path, name: str, port: int, model: dict, grpc_port: int) -> Path:
    """A folder ``mlserver start`` serves: settings.json + one model's model-settings.json."""
    folder = root / f"mlserver-{port}"
    (folder / name).mkdir(parents=True)
    settings = {
        "host": "127.0.0.1",
        "http_port": port,
        "grpc_port": grpc_port,
        "metrics_port": free_port(),
        # parallel_workers > 0 crashes with uvloop >= 0.22 (MLServer #2286).
        "parallel_workers": 0,
    }
    (folder / "settings.json").write_text(json.dumps(settings))
    (folder / name / "model-settings.json").write_text(json.dumps({"name": name, **model}))
    return folder


def load(label: str, url: str, grpc_port: int | None, body: dict, name: str, args, tmp: Path):
    """wrk on the REST ``url``, then (with ``grpc_port``) h2load on the gRPC endpoint."""
    results = [wrk(label, url, body, seconds=args.seconds, connections=args.connections, tmp=tmp)]
    if grpc_port is not None and args.grpc:
        results.append(
            h2load_grpc(
                label + GRPC,
                grpc_port,
                body,
                name,
                seconds=args.seconds,
                connections=args.connections,
                tmp=tmp,
            )
        )
    return results


def stock(root: Path, label: str, name: str, model: dict, body: dict, args, tmp: Path, grpc=False):
    port, grpc_port = free_port(), free_port()
    folder = mlserver_dir(root, name, port, model, grpc_port)
    if model["implementation"].startswith("noop."):
        (folder / name / "noop.py").write_text(NOOP_MODEL)
    command = [sys.executable, "-c", "from mlserver.cli.main import main; main()", "start"]
    # MLServer imports a model's implementation from the model's folder.
    env = {"PYTHONPATH": str(folder / name)}
    with process([*command, str(folder)], tmp / f"{port}.log", env=env):
        wait_http(f"http://127.0.0.1:{port}/v2/models/{name}/ready")
        url = f"http://127.0.0.1:{port}/v2/models/{name}/infer"
        return load(label, url, grpc_port if grpc else None, body, name, args, tmp)


def mlflow_serve(model_path: Path, body: dict, args, tmp: Path) -> LoadResult:
    port = free_port()
    command = [sys.executable, "-m", "mlflow", "models", "serve", "-m", str(model_path)]
    command += ["--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)]
    # MLflow execs `uvicorn` from PATH, and refuses to unpickle a model unless allowed.
    env = {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "true",
    }
    with process(command, tmp / "mlflow.log", env=env):
        wait_http(f"http://127.0.0.1:{port}/ping")
        url = f"http://127.0.0.1:{port}/invocations"
        return wrk(MLFLOW, url, body, seconds=args.seconds, connections=args.connections, tmp=tmp)


def one_round(project, version, model_path: Path, data, args, tmp: Path) -> list[LoadResult]:
    from mlops_kit.errors import TargetError
    from mlops_kit.gitops.deploy import spec_for
    from mlops_kit.targets import for_environment
    from mlops_kit.targets.local import LocalTarget
    from mlops_kit.verify import v2

    row = data.X_test.head(1)
    v2_body = v2.encode_dataframe(row)
    mlflow_body = {"dataframe_split": json.loads(row.to_json(orient="split", index=False))}
    name = project.model_name
    results = []

    serving = project.settings.serving
    unbatched = project.settings.model_copy(
        update={"serving": serving.model_copy(update={"max_batch_size": 1})}
    )
    for label, settings, environment in (
        (OURS, project.settings, "staging"),
        (OURS_UNBATCHED, unbatched, "production"),
    ):
        target = for_environment(settings, environment)
        for attempt in range(3):  # a port picked free may be taken by another process meanwhile
            try:
                target.apply(spec_for(project, environment, version))
                break
            except TargetError:
                target.delete(name)
                if attempt == 2:
                    raise
        try:
            url = target.endpoint(name) + "/infer"
            record = target.server(name) if isinstance(target, LocalTarget) else None
            grpc_port = record.grpc_port if record is not None and label == OURS else None
            results += load(label, url, grpc_port, v2_body, name, args, tmp)
        finally:
            target.delete(name)

    mlflow_model = {
        "implementation": "mlserver_mlflow.MLflowRuntime",
        "parameters": {"uri": str(model_path), "version": "1"},
    }
    batching = {**mlflow_model, **STOCK_BATCHING}
    results += stock(tmp, STOCK_BEST, name, batching, v2_body, args, tmp, grpc=True)
    results += stock(tmp, STOCK_PLAIN, name, mlflow_model, v2_body, args, tmp)
    results.append(mlflow_serve(model_path, mlflow_body, args, tmp))
    noop = {"implementation": "noop.NoOp"}
    results += stock(tmp, FLOOR, name, noop, v2_body, args, tmp, grpc=True)
    return results


def median(results: list[LoadResult]) -> LoadResult:
    """The median of each figure over the rounds of one server."""
    return LoadResult(
        results[0].name,
        int(statistics.median(r.requests for r in results)),
        results[0].seconds,
        statistics.median(r.rps for r in results),
        statistics.median(r.p50_ms for r in results),
        statistics.median(r.p99_ms for r in results),
        sum(r.errors for r in results),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10, help="seconds of load per server")
    parser.add_argument("--connections", type=int, default=50, help="concurrent connections")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; medians are reported")
    parser.add_argument(
        "--no-grpc", dest="grpc", action="store_false", help="skip the gRPC figures (h2load)"
    )
    args = parser.parse_args()
    require_wrk()
    if args.grpc:
        require_h2load()

    rounds: list[list[LoadResult]] = []
    with workdir() as tmp:
        project, version, model_path, data = train_model(tmp / "state")
        for number in range(1, args.rounds + 1):
            results = one_round(project, version, model_path, data, args, tmp)
            rounds.append(results)
            print(f"\nround {number} of {args.rounds}\n{HEADER}")
            for r in results:
                print(r.row())

    by_name = {r.name: median([rnd[i] for rnd in rounds]) for i, r in enumerate(rounds[0])}
    print(f"\nmedians over {args.rounds} rounds: {args.connections} connections, "
          f"{args.seconds:g} s each, one-row requests")  # fmt: skip
    print(HEADER)
    for r in by_name.values():
        print(r.row())
    ours, best, floor = by_name[OURS], by_name[STOCK_BEST], by_name[FLOOR]
    print(f"\nours / stock MLServer with adaptive batching  req/s: {ours.rps / best.rps:.2f}x")
    print(f"ours / stock MLServer without batching       req/s: "
          f"{ours.rps / by_name[STOCK_PLAIN].rps:.2f}x")  # fmt: skip
    print(f"ours / mlflow models serve                   req/s: "
          f"{ours.rps / by_name[MLFLOW].rps:.2f}x")  # fmt: skip
    print(f"ours / no-op floor                           req/s: {ours.rps / floor.rps:.2f}x")
    print(f"p99 ours {ours.p99_ms:.1f} ms, stock-best {best.p99_ms:.1f} ms (target <= 100 ms)")
    if args.grpc:
        g_ours, g_best, g_floor = (by_name[n + GRPC] for n in (OURS, STOCK_BEST, FLOOR))
        print(f"gRPC: ours / stock MLServer with adaptive batching  req/s: "
              f"{g_ours.rps / g_best.rps:.2f}x")  # fmt: skip
        print(f"gRPC: ours / no-op floor                           req/s: "
              f"{g_ours.rps / g_floor.rps:.2f}x")  # fmt: skip
        print(f"gRPC: p99 ours {g_ours.p99_ms:.1f} ms, stock-best {g_best.p99_ms:.1f} ms")


if __name__ == "__main__":
    main()

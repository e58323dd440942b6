"""Our local endpoint vs a bare `mlserver start` vs `mlflow models serve`, same model, same client.

    .venv/bin/python benchmarks/serving.py [--seconds 10] [--connections 50]

Each server gets the same single-row request from wrk (its native format: V2 JSON for the
MLServer-based ones, ``dataframe_split`` for MLflow's server), one after the other, on loopback:
ours as configured (micro-batching on), ours with batching off, stock MLServer, MLflow's
server. Prints req/s, p50, p99 and errors of each and the ratios of ours to the last two.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import HEADER, free_port, process, require_wrk, train_model, wait_http, workdir, wrk


def stock_mlserver_dir(root: Path, model_path: Path, name: str, port: int) -> Path:
    folder = root / "stock"
    (folder / name).mkdir(parents=True)
    (folder / "settings.json").write_text(
        json.dumps(
            {
                "host": "127.0.0.1",
                "http_port": port,
                "grpc_port": free_port(),
                "metrics_port": free_port(),
                # parallel_workers > 0 crashes with uvloop >= 0.22 (MLServer #2286).
                "parallel_workers": 0,
            }
        )
    )
    (folder / name / "model-settings.json").write_text(
        json.dumps(
            {
                "name": name,
                "implementation": "mlserver_mlflow.MLflowRuntime",
                "parameters": {"uri": str(model_path), "version": "1"},
            }
        )
    )
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=50)
    args = parser.parse_args()
    require_wrk()

    from mlops_kit.gitops.deploy import spec_for
    from mlops_kit.targets import for_environment
    from mlops_kit.verify import v2

    with workdir() as tmp:
        project, version, model_path, data = train_model(tmp / "state")
        row = data.X_test.head(1)
        v2_body = v2.encode_dataframe(row)
        mlflow_body = {"dataframe_split": json.loads(row.to_json(orient="split", index=False))}
        name = project.model_name
        results = []

        # Ours as configured, then ours with batching off (another environment, same model).
        serving = project.settings.serving
        unbatched = project.settings.model_copy(
            update={"serving": serving.model_copy(update={"max_batch_size": 1})}
        )
        for label, settings, environment in (
            (f"mlops-kit (batch {serving.max_batch_size})", project.settings, "staging"),
            ("mlops-kit, batching off", unbatched, "production"),
        ):
            target = for_environment(settings, environment)
            target.apply(spec_for(project, environment, version))
            try:
                results.append(
                    wrk(
                        label,
                        target.endpoint(name) + "/infer",
                        v2_body,
                        seconds=args.seconds,
                        connections=args.connections,
                        tmp=tmp,
                    )
                )
            finally:
                target.delete(name)

        port = free_port()
        folder = stock_mlserver_dir(tmp, model_path, name, port)
        mlserver = [
            sys.executable,
            "-c",
            "from mlserver.cli.main import main; main()",
            "start",
            str(folder),
        ]
        with process(mlserver, tmp / "stock.log"):
            wait_http(f"http://127.0.0.1:{port}/v2/models/{name}/ready")
            results.append(
                wrk(
                    "stock mlserver start",
                    f"http://127.0.0.1:{port}/v2/models/{name}/infer",
                    v2_body,
                    seconds=args.seconds,
                    connections=args.connections,
                    tmp=tmp,
                )
            )

        port = free_port()
        serve = [
            sys.executable,
            "-m",
            "mlflow",
            "models",
            "serve",
            "-m",
            str(model_path),
            "--env-manager",
            "local",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ]
        # MLflow execs `uvicorn` from PATH, and refuses to unpickle a model unless allowed.
        serve_env = {
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "true",
        }
        with process(serve, tmp / "mlflow.log", env=serve_env):
            wait_http(f"http://127.0.0.1:{port}/ping")
            results.append(
                wrk(
                    "mlflow models serve",
                    f"http://127.0.0.1:{port}/invocations",
                    mlflow_body,
                    seconds=args.seconds,
                    connections=args.connections,
                    tmp=tmp,
                )
            )

    print(f"\n{args.connections} concurrent connections, {args.seconds:g} s each, one-row requests")
    print(HEADER)
    for r in results:
        print(r.row())
    ours, _, stock, mlflow_serve = results
    print(f"\nours / stock MLServer       req/s ratio: {ours.rps / stock.rps:.2f}x")
    print(f"ours / mlflow models serve  req/s ratio: {ours.rps / mlflow_serve.rps:.2f}x")
    print(f"p99 ours {ours.p99_ms:.1f} ms (target <= 100 ms)")


if __name__ == "__main__":
    main()

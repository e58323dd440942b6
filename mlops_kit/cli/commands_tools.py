"""Tools around the pipeline: load tests, the Grafana dashboard, CI files, the MLflow UI, the
template of the storage Secret."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from mlops_kit.cli._common import AddCommand, project
from mlops_kit.errors import ConfigError
from mlops_kit.registry.database import redact

if TYPE_CHECKING:
    from mlops_kit.project import Project

UI_HOST = "127.0.0.1"
UI_PORT = 5000


def cmd_loadtest(args: argparse.Namespace) -> int:
    from mlops_kit.verify import loadtest

    proj = project(args)
    slo = loadtest.slo_from(
        proj.settings, p99_ms=args.p99_ms, max_error_rate=args.max_error_rate,
        min_rps=args.min_rps,
    )  # fmt: skip
    run = loadtest.load_test(
        proj, args.environment, users=args.users, spawn_rate=args.spawn_rate,
        duration_s=args.duration, rate=args.rate, progress=not args.quiet,
    )  # fmt: skip
    verdict = loadtest.evaluate(run, slo)
    if not args.no_record:
        loadtest.record(proj, run, verdict)
    print(run.comparison().to_string())
    print(verdict.summary())
    loadtest.enforce(verdict, args.fail_on_slo)
    return 0


def cmd_dashboard(args: argparse.Namespace) -> int:
    from mlops_kit.verify.monitoring import FLAVOURS, write_dashboard

    for path in write_dashboard(args.output_dir, args.metrics or FLAVOURS).values():
        print(f"wrote {path}")
    return 0


def cmd_ci(args: argparse.Namespace) -> int:
    from mlops_kit.ci import write_ci

    written = write_ci(
        args.provider,
        Path(args.repo_dir),
        python=args.python,
        notebooks=args.notebooks,
        config=args.config or "mlops.yaml",
        extras=args.extras,
        toolkit_spec=args.toolkit_spec,
        target=args.target,
        force=args.force,
    )
    for path in written:
        print(f"wrote {path}")
    return 0


def ui_command(proj: Project, port: int) -> list[str]:
    """``mlflow ui`` on the project's registry, bound to loopback (this interpreter's MLflow).

    A registry URI holding a password goes through :func:`ui_env` instead, never into ``ps``.
    """
    cmd = [sys.executable, "-m", "mlflow", "ui"]
    if redact(proj.tracking_uri) == proj.tracking_uri:
        cmd += ["--backend-store-uri", proj.tracking_uri]
    if not proj.settings.registry_uri:
        # Artifacts stay where the toolkit writes them (state directory or artifact_store).
        cmd += ["--default-artifact-root", proj.artifact_uri, "--no-serve-artifacts"]
    return cmd + ["--host", UI_HOST, "--port", str(port), "--workers", "1"]


def ui_env(proj: Project) -> dict[str, str]:
    """Our environment without a client's tracking URI; no job runner (it costs processes)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}  # fmt: skip
    env["MLFLOW_BACKEND_STORE_URI"] = proj.tracking_uri
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
    env.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    return env


def cmd_ui(args: argparse.Namespace) -> int:
    from mlops_kit.process import port_free

    proj = project(args)
    if proj.tracking_uri.startswith(("http://", "https://")):
        print(f"the registry is a server with its own UI: {redact(proj.tracking_uri)}")
        return 0
    if not port_free(UI_HOST, args.port):
        raise ConfigError(f"port {args.port} on {UI_HOST} is in use; choose another with --port")
    where = redact(proj.tracking_uri)
    print(f"MLflow UI on {where}: http://{UI_HOST}:{args.port} (Ctrl-C to stop)", flush=True)
    try:
        return subprocess.run(ui_command(proj, args.port), env=ui_env(proj), check=False).returncode
    except KeyboardInterrupt:
        return 0


def cmd_storage_secret(args: argparse.Namespace) -> int:
    from mlops_kit.gitops import manifests
    from mlops_kit.targets.kubernetes.endpoints import namespace_for

    settings = project(args).settings
    name = settings.kubernetes.storage_secret
    if name is None:
        raise ConfigError("kubernetes.storage_secret is not set: the documents name no Secret")
    namespace = namespace_for(settings, settings.environment(args.environment))
    doc = manifests.render_storage_secret(
        name, settings.gitops.manifest, namespace, region=args.region, endpoint=args.endpoint
    )
    print(manifests.dump(doc), end="")
    return 0


def register(add: AddCommand) -> None:
    """Add ``loadtest``, ``dashboard``, ``ci``, ``ui`` and ``storage-secret``."""
    lt = add(
        "loadtest",
        "load-test an environment and judge it against the SLO",
        "mlops-kit loadtest staging --users 20 --duration 10 --p99-ms 100 --fail-on-slo",
        cmd_loadtest,
    )
    lt.add_argument("environment", nargs="?", default="staging",
                    help="environment to load (default: staging)")  # fmt: skip
    lt.add_argument("--users", type=int, default=10, help="simulated users (default 10)")
    lt.add_argument("--spawn-rate", type=float, default=10.0, metavar="PER_SECOND",
                    help="users started per second (default 10)")  # fmt: skip
    lt.add_argument("--duration", type=float, default=5.0, metavar="SECONDS",
                    help="seconds of load (default 5)")  # fmt: skip
    lt.add_argument(
        "--rate",
        type=float,
        metavar="PER_SECOND",
        help="pace to this many requests/s in all (default: as fast as answered)",
    )
    lt.add_argument("--p99-ms", type=float, metavar="MS", help="SLO: p99 latency at most (ms)")
    lt.add_argument("--max-error-rate", type=float, metavar="SHARE",
                    help="SLO: share of failed requests at most, 0-1")  # fmt: skip
    lt.add_argument("--min-rps", type=float, metavar="PER_SECOND",
                    help="SLO: requests per second at least")  # fmt: skip
    lt.add_argument("--fail-on-slo", action="store_true", help="exit 1 if the SLO is missed")
    lt.add_argument(
        "--no-record",
        action="store_true",
        help="neither tag the version nor attach the verdict to its request",
    )
    lt.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    dash = add(
        "dashboard",
        "write the Grafana dashboard and its PromQL for clusters",
        "mlops-kit dashboard -o build/monitoring --metrics mlserver seldon-v2",
        cmd_dashboard,
    )
    dash.add_argument(
        "-o",
        "--output-dir",
        default="build/monitoring",
        metavar="DIR",
        help="where dashboard.json and queries.json go (default build/monitoring)",
    )
    dash.add_argument("--metrics", nargs="+", choices=["mlserver", "seldon-v1", "seldon-v2"],
                      help="metric sets to chart (default: all three)")  # fmt: skip

    ci = add(
        "ci",
        "write a CI pipeline (github, gitlab, jenkins) into a model repository",
        "mlops-kit ci github --repo-dir ../my-model --notebooks 01,02",
        cmd_ci,
    )
    ci.add_argument("provider", help="github, gitlab or jenkins")
    ci.add_argument("--repo-dir", default=".", metavar="DIR",
                    help="the model repository (default: here)")  # fmt: skip
    ci.add_argument("--python", default="3.12", metavar="VERSION",
                    help="Python version of the CI job (default 3.12)")  # fmt: skip
    ci.add_argument(
        "--notebooks",
        default="01,02",
        help="notebooks the pipeline runs, comma-separated (default 01,02)",
    )
    ci.add_argument(
        "--extras", default="load", help="toolkit extras to install, comma-separated (default load)"
    )
    ci.add_argument(
        "--toolkit-spec",
        default="mlops-kit",
        metavar="SPEC",
        help="pip requirement, path or git URL of the toolkit (default mlops-kit)",
    )
    ci.add_argument("--target", metavar="NAME",
                    help="deploy through this target (local, kubernetes, sagemaker): the "
                    "notebooks get target=NAME, its extra is installed, Jenkins binds its "
                    "credentials")  # fmt: skip
    ci.add_argument("--force", action="store_true", help="overwrite existing files")

    ui = add(
        "ui",
        "open the MLflow UI on the project's registry, on 127.0.0.1",
        "mlops-kit ui --port 5001",
        cmd_ui,
    )
    ui.add_argument("--port", type=int, default=UI_PORT,
                    help=f"port on {UI_HOST} (default {UI_PORT})")  # fmt: skip

    secret = add(
        "storage-secret",
        "print a template of the Secret Seldon reads s3:// models with (no real credentials)",
        "mlops-kit storage-secret staging --region eu-west-1",
        cmd_storage_secret,
    )
    secret.add_argument(
        "environment",
        nargs="?",
        default="staging",
        help="environment whose namespace it goes to (default: staging)",
    )
    secret.add_argument("--region", help="the bucket's region")
    secret.add_argument(
        "--endpoint", metavar="URL", help="the S3-compatible endpoint, as the cluster sees it"
    )

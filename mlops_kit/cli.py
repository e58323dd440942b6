"""The ``mlops-kit`` command line: every subcommand is a thin call into the library."""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable, Sequence
from typing import Any

from mlops_kit.errors import ParameterError, ToolkitError

Handler = Callable[[argparse.Namespace], int]


def parse_parameter(text: str) -> tuple[str, Any]:
    """``key=value`` with the value read as YAML: ``n=3`` is an int, ``x=true`` a bool."""
    import yaml

    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ParameterError(text, "expected key=value")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    if isinstance(value, dict | list):
        value = raw
    return key.strip(), value


def preflight(parameters: dict[str, Any], config: str | None) -> None:
    """Check the parameters the library can validate before any kernel starts."""
    from mlops_kit.settings import TrainingSettings, load_settings
    from mlops_kit.train.training import training_params

    training = {k: v for k, v in parameters.items() if k in TrainingSettings.model_fields}
    if training:
        training_params(load_settings(config).training, **training)


def cmd_run(args: argparse.Namespace) -> int:
    from mlops_kit.notebook.runner import run_notebooks

    parameters = dict(parse_parameter(p) for p in args.parameter)
    preflight(parameters, args.config)
    runs = run_notebooks(
        args.notebooks,
        parameters,
        output_dir=args.output_dir,
        config=args.config,
        progress_bar=not args.quiet,
    )
    for run in runs:
        print(f"{run.source.name}: ok -> {run.output} ({run.html.name})")
    return 0


def cmd_versions(args: argparse.Namespace) -> int:
    from mlops_kit.project import Project
    from mlops_kit.registry.client import Registry

    rows = [v.as_row() for v in Registry(Project.load(args.config)).versions()]
    if not rows:
        print("no versions registered yet")
        return 0
    columns = list(rows[0])
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in columns}
    print("  ".join(c.ljust(widths[c]) for c in columns))
    for row in rows:
        print("  ".join(str(row[c]).ljust(widths[c]) for c in columns))
    return 0


def _project(args: argparse.Namespace) -> Any:
    from mlops_kit.project import Project

    return Project.load(args.config)


def cmd_deploy(args: argparse.Namespace) -> int:
    from mlops_kit.gitops.deploy import deploy, smoke

    project = _project(args)
    result = deploy(project, args.environment, args.version, actor=args.actor)
    print(result.sync.summary())
    if not args.no_smoke:
        smoke(project, args.environment, result.version)
        print(f"smoke test passed: {result.endpoint}")
    return 0


def cmd_sync(args: argparse.Namespace) -> int:
    import threading

    from mlops_kit.gitops.sync import sync, watch

    project = _project(args)
    if not args.watch:
        print(sync(project, args.environment).summary())
        return 0
    stop = threading.Event()
    if args.max_seconds:
        threading.Timer(args.max_seconds, stop.set).start()

    def show(report: Any) -> None:
        if report.changed:
            print(report.summary(), flush=True)

    print(f"watching {args.environment} every {args.interval}s (Ctrl-C to stop)", flush=True)
    try:
        watch(project, args.environment, interval=args.interval, stop=stop, on_report=show)
    except KeyboardInterrupt:
        stop.set()
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from mlops_kit import targets

    project = _project(args)
    names = (
        [args.environment] if args.environment else [e.name for e in project.settings.environments]
    )
    for name in names:
        with targets.for_environment(project.settings, name) as target:
            found = target.list()
            if not found:
                print(f"{name}: nothing deployed")
            for st in found:
                state = "ready" if st.ready else f"NOT READY ({st.detail})"
                print(f"{name}: {st.model_name} v{st.version} {state} {st.endpoint or ''}")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    from mlops_kit.targets.local import stop_all

    project = _project(args)
    stopped = stop_all(project.state_dir, args.environment)
    print(f"stopped {len(stopped)} server(s)" + (f": {', '.join(stopped)}" if stopped else ""))
    return 0


def cmd_ci(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mlops_kit.ci import write_ci

    written = write_ci(
        args.provider,
        Path(args.repo_dir),
        python=args.python,
        notebooks=args.notebooks,
        config=args.config or "mlops.yaml",
        extras=args.extras,
        toolkit_spec=args.toolkit_spec,
        force=args.force,
    )
    for path in written:
        print(f"wrote {path}")
    return 0


def cmd_request(args: argparse.Namespace) -> int:
    from mlops_kit.promote.promotion import Promotions

    request = Promotions(_project(args)).open(
        args.version, from_env=args.from_env, to_env=args.to_env, requested_by=args.actor
    )
    print(f"opened {request.id}: v{request.candidate} {request.from_env} -> {request.to_env}")
    return 0


def cmd_requests(args: argparse.Namespace) -> int:
    from mlops_kit.promote.promotion import Promotions

    requests = Promotions(_project(args)).all(args.status)
    if not requests:
        print("no promotion requests")
    for r in requests:
        who = ", ".join(r.approvers) or "-"
        print(f"{r.id}  v{r.candidate} {r.from_env}->{r.to_env}  {r.status:<10} "
              f"by {r.requested_by}  approved by {who}  {r.outcome}")  # fmt: skip
    return 0


def cmd_decide(args: argparse.Namespace) -> int:
    from mlops_kit.promote.promotion import Promotions

    promotions = Promotions(_project(args))
    if args.command == "approve":
        request = promotions.approve(args.request, args.actor, args.comment)
    else:
        request = promotions.reject(args.request, args.actor, args.comment)
    print(f"{request.id}: {request.status}" + (f" ({request.outcome})" if request.outcome else ""))
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    from mlops_kit.promote.promotion import Promotions

    project = _project(args)
    sha = Promotions(project).rollback(args.environment, args.actor)
    print(f"rolled back {args.environment} ({sha[:10]})")
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    from datetime import datetime

    from mlops_kit.gitops import audit

    project = _project(args)
    if args.at:
        when = datetime.fromisoformat(args.at)
        version = audit.served_at(project, args.environment, when, args.model)
        print(f"{args.environment} served v{version} at {when.isoformat()}" if version
              else f"{args.environment} served nothing at {when.isoformat()}")  # fmt: skip
        return 0
    events = audit.history(project, args.model)
    if not events:
        print("no deployments recorded")
        return 0
    print(audit.table(events).to_string(index=False))
    return 0


def cmd_follow(args: argparse.Namespace) -> int:
    import threading
    import time

    from mlops_kit.registry.controller import follow

    project = _project(args)
    if args.server:
        from mlops_kit.registry.server import served

        project = served(project)
    stop = threading.Event()
    if args.max_seconds:
        threading.Timer(args.max_seconds, stop.set).start()

    def show(event: Any, result: Any) -> None:
        lag = time.time() - event.received_at.timestamp()
        print(f"{event.alias} -> v{event.version} ({event.source}): "
              f"{result.sync.summary()} [+{lag:.2f}s]", flush=True)  # fmt: skip

    print(f"following alias {args.environment!r} (Ctrl-C to stop)", flush=True)
    try:
        follow(project, args.environment, stop=stop, interval=args.interval, on_deploy=show)
    except KeyboardInterrupt:
        stop.set()
    return 0


def cmd_loadtest(args: argparse.Namespace) -> int:
    from mlops_kit.verify import loadtest

    project = _project(args)
    slo = loadtest.slo_from(
        project.settings, p99_ms=args.p99_ms, max_error_rate=args.max_error_rate,
        min_rps=args.min_rps,
    )  # fmt: skip
    run = loadtest.load_test(
        project, args.environment, users=args.users, spawn_rate=args.spawn_rate,
        duration_s=args.duration, rate=args.rate, progress=not args.quiet,
    )  # fmt: skip
    verdict = loadtest.evaluate(run, slo)
    if not args.no_record:
        loadtest.record(project, run, verdict)
    print(run.comparison().to_string())
    print(verdict.summary())
    loadtest.enforce(verdict, args.fail_on_slo)
    return 0


def cmd_dashboard(args: argparse.Namespace) -> int:
    from mlops_kit.verify.monitoring import FLAVOURS, write_dashboard

    for path in write_dashboard(args.output_dir, args.metrics or FLAVOURS).values():
        print(f"wrote {path}")
    return 0


def cmd_setup(args: argparse.Namespace) -> int:
    from mlops_kit.targets import setup as environments

    project = environments.load_project(args.config, args.target)
    report = environments.setup(project, args.target, apply_argocd=args.apply_argocd)
    for check in report.checks:
        print(f"{'ok  ' if check.ok else 'FAIL'} {check.name}: {check.detail}")
    report.raise_for_failure()
    return 0


def cmd_build_context(args: argparse.Namespace) -> int:
    from mlops_kit.targets import build_context

    ctx = build_context.for_version(
        _project(args), args.version, args.flavour, dest=args.output, image=args.image,
        source_dir=args.source_dir,
    )  # fmt: skip
    print(f"wrote {ctx.path} ({len(ctx.files)} files)\n" + " ".join(ctx.build_command()))
    return 0


def cmd_seldon_env(args: argparse.Namespace) -> int:
    from mlops_kit.serving import seldon

    project = _project(args)
    path = args.path or seldon.default_env_path(project.settings.state_dir)
    print(f"creating the seldon-core environment at {path} (about 30 s)", file=sys.stderr)
    print(seldon.ensure_seldon_env(path, args.package))
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    from mlops_kit.scaffold import init

    print("\n".join(f"wrote {path}" for path in init(args.directory, ci=args.ci)))
    print(f"next: cd {args.directory} && mlops-kit run 01 02, or mlops-kit lab to open it")
    return 0


def cmd_lab(args: argparse.Namespace) -> int:
    from mlops_kit.notebook.lab import exec_lab, lab_command
    from mlops_kit.settings import load_settings

    settings, browser = load_settings(args.config), not args.no_browser
    command = lab_command(settings, args.port, open_browser=browser, extra_args=args.jupyter_args)
    print(f"JupyterLab on 127.0.0.1 at {command.cwd} (Ctrl-C to stop)", flush=True)
    exec_lab(command)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, one subparser per command."""
    parser = argparse.ArgumentParser(
        prog="mlops-kit", description="CI/CD for ML models: train, deploy, promote, load test."
    )
    config_help = "project file (default: $MLOPS_KIT_CONFIG, else the nearest mlops.yaml upwards)"
    parser.add_argument("--config", help=config_help)
    # --config may also follow the command; SUPPRESS keeps it from overwriting the first one.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", default=argparse.SUPPRESS, help=config_help)
    sub = parser.add_subparsers(dest="command", required=True)
    add = functools.partial(sub.add_parser, parents=[common])

    run = add("run", help="execute pipeline notebooks with papermill")
    run.add_argument("notebooks", nargs="*", help="names, prefixes (01) or paths; default: all")
    run.add_argument("-p", "--parameter", action="append", default=[], metavar="KEY=VALUE")
    run.add_argument("-o", "--output-dir", help="default: reports_dir (build/notebooks)")
    run.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    run.set_defaults(handler=cmd_run)

    versions = add("versions", help="list registered versions with aliases and lineage")
    versions.set_defaults(handler=cmd_versions)

    dep = add("deploy", help="commit a version to an environment, sync, smoke-test")
    dep.add_argument("environment")
    dep.add_argument("version")
    dep.add_argument("--actor", help="who deploys (default: $MLOPS_KIT_ACTOR or login name)")
    dep.add_argument("--no-smoke", action="store_true", help="skip the smoke test")
    dep.set_defaults(handler=cmd_deploy)

    syn = add("sync", help="make an environment match the GitOps repo")
    syn.add_argument("environment")
    syn.add_argument("--watch", action="store_true", help="keep reconciling (self-heal)")
    syn.add_argument("--interval", type=float, default=1.0, help="seconds between rounds")
    syn.add_argument("--max-seconds", type=float, default=None, help="stop watching after this")
    syn.set_defaults(handler=cmd_sync)

    sta = add("status", help="what each environment serves now")
    sta.add_argument("environment", nargs="?")
    sta.set_defaults(handler=cmd_status)

    down = add("down", help="stop local servers (all, or one environment's)")
    down.add_argument("environment", nargs="?")
    down.set_defaults(handler=cmd_down)
    req = add("request", help="open a promotion request (default: staging's version)")
    req.add_argument("version", nargs="?")
    req.add_argument("--from-env", dest="from_env")
    req.add_argument("--to-env", dest="to_env")
    req.add_argument("--as", dest="actor", help="requester (default: $MLOPS_KIT_ACTOR or login)")
    req.set_defaults(handler=cmd_request)

    reqs = add("requests", help="list promotion requests")
    reqs.add_argument(
        "--status", choices=["pending", "approved", "rejected", "rolled_out", "failed"]
    )
    reqs.set_defaults(handler=cmd_requests)

    for name, text in (("approve", "approve a promotion request"), ("reject", "reject one")):
        dec = add(name, help=text)
        dec.add_argument("request", help="request id (a unique prefix is enough)")
        dec.add_argument("--as", dest="actor", required=True, help="your name")
        dec.add_argument("--comment", "-m", default="", help="comment (required to reject)")
        dec.set_defaults(handler=cmd_decide)

    rb = add("rollback", help="step an environment back to its previous version")
    rb.add_argument("environment")
    rb.add_argument("--as", dest="actor")
    rb.set_defaults(handler=cmd_rollback)

    hist = add("history", help="who requested, approved and rolled out what, when")
    hist.add_argument("model", nargs="?")
    hist.add_argument("--at", help="ISO time with zone: which version served then")
    hist.add_argument("--environment", default="production")
    hist.set_defaults(handler=cmd_history)

    fol = add("follow", help="deploy whenever an environment's registry alias moves")
    fol.add_argument("environment", nargs="?", default="staging")
    fol.add_argument(
        "--server",
        action="store_true",
        help="use (start) the local mlflow server, for webhooks instead of polling",
    )
    fol.add_argument("--interval", type=float, default=1.0, help="poll interval (no webhooks)")
    fol.add_argument("--max-seconds", type=float, default=None)
    fol.set_defaults(handler=cmd_follow)

    lt = add("loadtest", help="load-test an environment and judge it against the SLO")
    lt.add_argument("environment", nargs="?", default="staging")
    lt.add_argument("--users", type=int, default=10, help="simulated users (default 10)")
    lt.add_argument("--spawn-rate", type=float, default=10.0, help="users started per second")
    lt.add_argument("--duration", type=float, default=5.0, help="seconds of load (default 5)")
    lt.add_argument("--rate", type=float, help="pace to this many requests/s in all")
    lt.add_argument("--p99-ms", type=float, help="SLO: p99 latency at most (ms)")
    lt.add_argument("--max-error-rate", type=float, help="SLO: share of failures at most")
    lt.add_argument("--min-rps", type=float, help="SLO: requests per second at least")
    lt.add_argument("--fail-on-slo", action="store_true", help="exit 1 if the SLO is missed")
    lt.add_argument("--no-record", action="store_true", help="neither tag nor attach evidence")
    lt.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    lt.set_defaults(handler=cmd_loadtest)

    dash = add("dashboard", help="write the Grafana dashboard and its PromQL for clusters")
    dash.add_argument("-o", "--output-dir", default="build/monitoring")
    dash.add_argument("--metrics", nargs="+", choices=["mlserver", "seldon-v1", "seldon-v2"])
    dash.set_defaults(handler=cmd_dashboard)

    st = add("setup", help="create and check the environments (notebook 01)")
    st.add_argument("--target", choices=["local", "kubernetes", "sagemaker"])
    st.add_argument("--apply-argocd", action="store_true", help="apply Argo CD Applications")
    st.set_defaults(handler=cmd_setup)

    bc = add("build-context", help="write a Docker build context (custom / embedded flavour)")
    bc.add_argument("version")
    bc.add_argument("--flavour", choices=["custom", "embedded"], default="embedded")
    bc.add_argument("--image")
    bc.add_argument("--output")
    bc.add_argument("--source-dir")
    bc.set_defaults(handler=cmd_build_context)

    se = add("seldon-env", help="create the seldon-core environment of the custom flavour")
    se.add_argument("--path", help="where (default: <state_dir>/envs/seldon)")
    se.add_argument("--package", action="append", default=[], help="more packages (repeatable)")
    se.set_defaults(handler=cmd_seldon_env)

    ci = add("ci", help="write a CI pipeline (github, gitlab, jenkins) into a model repo")
    ci.add_argument("provider", help="github, gitlab or jenkins")
    ci.add_argument("--repo-dir", default=".", help="the model repository (default: here)")
    ci.add_argument("--python", default="3.12")
    ci.add_argument("--notebooks", default="01,02", help="notebooks the pipeline runs")
    ci.add_argument("--extras", default="load", help="toolkit extras to install")
    ci.add_argument("--toolkit-spec", default="mlops-kit", help="pip requirement, path or git URL")
    ci.add_argument("--force", action="store_true", help="overwrite existing files")
    ci.set_defaults(handler=cmd_ci)
    ini = add("init", help="scaffold a model repository: mlops.yaml, notebooks, .gitignore, CI",
              epilog="example: mlops-kit init churn-model --ci github")  # fmt: skip
    ini.add_argument("directory", nargs="?", default=".", help="where (default: here)")
    ini.add_argument("--ci", choices=["github", "gitlab", "jenkins"], help="add this CI pipeline")
    ini.set_defaults(handler=cmd_init)
    lab = add("lab", help="open the project in JupyterLab (127.0.0.1, the project's settings)",
              epilog="example: mlops-kit lab --port 8890 -- --ServerApp.token=secret")  # fmt: skip
    lab.add_argument("--port", type=int, help="serve on this port (default: 8888 or the next)")
    lab.add_argument("--no-browser", action="store_true", help="do not open a browser")
    lab.add_argument("jupyter_args", nargs=argparse.REMAINDER, help="after --: jupyter's own")
    lab.set_defaults(handler=cmd_lab)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: run a command; print toolkit errors as one line, no traceback."""
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except ToolkitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

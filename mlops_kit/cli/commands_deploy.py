"""Deployment commands: deploy through GitOps, sync, status, follow an alias, stop servers,
build contexts and the custom flavour's environment."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from mlops_kit.cli._common import AddCommand, add_actor, project
from mlops_kit.errors import ConfigError


def cmd_deploy(args: argparse.Namespace) -> int:
    from mlops_kit.gitops.deploy import deploy, smoke

    proj = project(args)
    result = deploy(proj, args.environment, args.version, actor=args.actor)
    print(result.sync.summary())
    if not args.no_smoke:
        smoke(proj, args.environment, result.version)
        print(f"smoke test passed: {result.endpoint}")
    return 0


def cmd_sync(args: argparse.Namespace) -> int:
    import threading

    from mlops_kit.gitops.sync import sync, watch

    proj = project(args)
    if not args.watch:
        print(sync(proj, args.environment, check_aliases=True).summary())
        return 0
    stop = threading.Event()
    if args.max_seconds:
        # A daemon: after Ctrl-C the process must not wait for the timer to fire.
        timer = threading.Timer(args.max_seconds, stop.set)
        timer.daemon = True
        timer.start()

    def show(report: Any) -> None:
        if report.changed:
            print(report.summary(), flush=True)

    try:
        print(f"watching {args.environment} every {args.interval}s (Ctrl-C to stop)", flush=True)
        watch(proj, args.environment, interval=args.interval, stop=stop, on_report=show)
    except KeyboardInterrupt:
        stop.set()
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from mlops_kit import targets
    from mlops_kit.gitops.drift import alias_drift

    proj = project(args)
    names = [args.environment] if args.environment else [e.name for e in proj.settings.environments]
    for name in names:
        with targets.for_environment(proj.settings, name) as target:
            found = target.list()
            if not found:
                print(f"{name}: nothing deployed")
            for st in found:
                state = "ready" if st.ready else f"NOT READY ({st.detail})"
                print(f"{name}: {st.model_name} v{st.version} {state} {st.endpoint or ''}".rstrip())
        moved = alias_drift(proj, name) if found else None
        if moved is not None:
            print(f"warning: {moved.message()}")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    from mlops_kit.registry import server as registry_server
    from mlops_kit.schedule import scheduler
    from mlops_kit.targets.local import stop_all
    from mlops_kit.verify.monitoring import prometheus

    proj = project(args)
    if args.target == "sagemaker":
        from mlops_kit.targets.sagemaker.target import teardown

        deleted = teardown(proj.settings, args.environment)
        print(f"deleted {len(deleted)} SageMaker resource(s)"
              + (f": {', '.join(deleted)}" if deleted else ""))  # fmt: skip
        return 0
    stopped = stop_all(proj.state_dir, args.environment)
    if args.environment is None and registry_server.stop(proj):
        stopped.append("registry server")
    if args.environment is None and scheduler.stop(proj):
        stopped.append("scheduler")
    if args.environment is None and prometheus.stop(proj):
        stopped.append("Prometheus")
    print(f"stopped {len(stopped)} server(s)" + (f": {', '.join(stopped)}" if stopped else ""))
    return 0


def cmd_follow(args: argparse.Namespace) -> int:
    import threading
    import time

    from mlops_kit.registry import server as registry_server
    from mlops_kit.registry.controller import follow

    proj = project(args)
    # A server this command starts is stopped when it ends; one already running is left be.
    started = args.server and registry_server.status(proj) is None
    if args.server:
        proj = registry_server.served(proj)
    stop = threading.Event()
    if args.max_seconds:
        # A daemon: after Ctrl-C the process must not wait for the timer to fire.
        timer = threading.Timer(args.max_seconds, stop.set)
        timer.daemon = True
        timer.start()

    def show(event: Any, result: Any) -> None:
        lag = time.time() - event.received_at.timestamp()
        print(f"{event.alias} -> v{event.version} ({event.source}): "
              f"{result.sync.summary()} [+{lag:.2f}s]", flush=True)  # fmt: skip

    print(f"following alias {args.environment!r} (Ctrl-C to stop)", flush=True)
    try:
        follow(proj, args.environment, stop=stop, interval=args.interval, on_deploy=show)
    except KeyboardInterrupt:
        stop.set()
    finally:
        if started:
            registry_server.stop(project(args))
    return 0


def cmd_build_context(args: argparse.Namespace) -> int:
    from mlops_kit.targets import build_context

    proj = project(args)
    if args.flavour == "sagemaker":  # one image trains and serves every version
        from mlops_kit.targets.sagemaker import write_build_context

        image = args.image or proj.settings.sagemaker.image_uri
        ctx = write_build_context(proj, args.output, image=image)
    elif args.version is None:
        raise ConfigError(f"the {args.flavour} flavour builds one version: name it")
    else:
        ctx = build_context.for_version(
            proj, args.version, args.flavour, dest=args.output, image=args.image,
            source_dir=args.source_dir,
        )  # fmt: skip
    print(f"wrote {ctx.path} ({len(ctx.files)} files)\n" + " ".join(ctx.build_command()))
    return 0


def cmd_seldon_env(args: argparse.Namespace) -> int:
    from mlops_kit.serving import seldon

    proj = project(args)
    path = args.path or seldon.default_env_path(proj.settings.state_dir)
    print(f"creating the seldon-core environment at {path} (about 30 s)", file=sys.stderr)
    print(seldon.ensure_seldon_env(path, args.package))
    return 0


def register(add: AddCommand) -> None:
    """Add deploy, sync, status, down, follow, build-context and seldon-env."""
    dep = add(
        "deploy",
        "commit a version to an environment's GitOps path, sync, smoke-test",
        "mlops-kit deploy staging 3 --as alice",
        cmd_deploy,
    )
    dep.add_argument("environment", help="environment to deploy to, e.g. staging")
    dep.add_argument("version", help="registered model version (a number)")
    add_actor(dep)
    dep.add_argument("--no-smoke", action="store_true", help="skip the smoke test")

    syn = add(
        "sync",
        "make an environment match the GitOps repository",
        "mlops-kit sync staging --watch --interval 2",
        cmd_sync,
    )
    syn.add_argument("environment", help="environment to reconcile")
    syn.add_argument("--watch", action="store_true", help="keep reconciling (self-heal)")
    syn.add_argument("--interval", type=float, default=1.0, metavar="SECONDS",
                     help="seconds between rounds with --watch (default 1)")  # fmt: skip
    syn.add_argument("--max-seconds", type=float, default=None, metavar="SECONDS",
                     help="stop watching after this many seconds (default: never)")  # fmt: skip

    sta = add(
        "status",
        "what each environment serves now, and where",
        "mlops-kit status production",
        cmd_status,
    )
    sta.add_argument("environment", nargs="?", help="one environment (default: every one)")

    down = add(
        "down",
        "stop local servers, or delete SageMaker endpoints (every one, or one environment's)",
        "mlops-kit down staging --target sagemaker",
        cmd_down,
    )
    down.add_argument("environment", nargs="?", help="one environment (default: every one)")
    down.add_argument("--target", choices=["local", "sagemaker"], default="local",
                      help="local: stop the servers (default); sagemaker: delete the endpoints, "
                      "endpoint configs and models the toolkit created")  # fmt: skip

    fol = add(
        "follow",
        "deploy whenever an environment's registry alias moves",
        "mlops-kit follow staging --server",
        cmd_follow,
    )
    fol.add_argument("environment", nargs="?", default="staging",
                     help="environment whose alias to follow (default: staging)")  # fmt: skip
    fol.add_argument(
        "--server", action="store_true",
        help="use (start) the local mlflow server, for webhooks instead of polling",
    )  # fmt: skip
    fol.add_argument("--interval", type=float, default=1.0, metavar="SECONDS",
                     help="poll interval without webhooks (default 1)")  # fmt: skip
    fol.add_argument("--max-seconds", type=float, default=None, metavar="SECONDS",
                     help="stop following after this many seconds (default: never)")  # fmt: skip

    bc = add(
        "build-context",
        "write a Docker build context (a version's server image, or the SageMaker image)",
        "mlops-kit build-context 3 --flavour embedded --image registry.example/wine:3",
        cmd_build_context,
    )
    bc.add_argument("version", nargs="?", help="registered model version (not for sagemaker)")
    bc.add_argument("--flavour", choices=["custom", "embedded", "sagemaker"], default="embedded",
                    help="embedded: one version inside the image (default); custom: one "
                    "server image for every version, the model downloaded at start; sagemaker: "
                    "the bring-your-own image that trains and serves (tag: "
                    "sagemaker.image_uri)")  # fmt: skip
    bc.add_argument("--image", help="image name the build command tags (default: MODEL:latest)")
    bc.add_argument(
        "--output",
        metavar="DIR",
        help="directory to write (default: <state_dir>/build/MODEL-VERSION-FLAVOUR)",
    )
    bc.add_argument("--source-dir", metavar="DIR",
                    help="your code, copied to src/ and put on PYTHONPATH (a custom runtime "
                    "class in your repository)")  # fmt: skip

    se = add(
        "seldon-env",
        "create the seldon-core environment of the custom flavour",
        "mlops-kit seldon-env --package 'numpy<2'",
        cmd_seldon_env,
    )
    se.add_argument("--path", help="where (default: <state_dir>/envs/seldon)")
    se.add_argument("--package", action="append", default=[], metavar="SPEC",
                    help="one more pip requirement to install (repeatable)")  # fmt: skip

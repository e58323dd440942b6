"""Schedule commands: ``retrain`` (one scheduled run), ``schedule`` (add, list, pause, resume,
remove, runs, key, and the scale-out forms) and ``scheduler`` (the background process)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_kit.cli._common import AddCommand, add_actor, print_table, project
from mlops_kit.cli.commands_pipeline import parse_parameter, preflight
from mlops_kit.errors import ParameterError

if TYPE_CHECKING:
    from mlops_kit.project import Project
    from mlops_kit.schedule.store import Run, Schedule, ScheduleStore

RETRAIN_EXAMPLE = "mlops-kit retrain -p n_estimators=200 --as alice"
SCHEDULE_EXAMPLES = """\
mlops-kit schedule add nightly --cron "0 3 * * *" --retries 2 --on-new-data --as alice
mlops-kit schedule add demo --cron "*/30 * * * * *"
mlops-kit schedule list
mlops-kit schedule pause nightly
mlops-kit schedule resume nightly
mlops-kit schedule runs nightly
mlops-kit schedule key
mlops-kit schedule cronjob nightly
mlops-kit schedule workflow nightly --repo-dir ../my-model
mlops-kit schedule kfp nightly -o build/retrain-pipeline.yaml
mlops-kit schedule remove nightly
"""
ACTIONS = ["add", "list", "pause", "resume", "remove", "runs", "key", "cronjob", "workflow", "kfp"]


def cmd_retrain(args: argparse.Namespace) -> int:
    from mlops_kit.schedule.retrain import retrain, staged_fingerprint

    proj = project(args)
    parameters = dict(parse_parameter(p) for p in args.parameter)
    preflight(parameters, args.config)
    since = args.since_fingerprint or (staged_fingerprint(proj) if args.on_new_data else None)
    result = retrain(
        proj,
        parameters=parameters,
        since_fingerprint=since,
        schedule=args.schedule,
        progress_bar=not args.quiet,
    )
    if args.result:
        from mlops_kit.process import write_json

        write_json(Path(args.result), {**result.__dict__, "summary": result.summary()})
    print(result.summary())
    return 0


def cmd_schedule(args: argparse.Namespace) -> int:
    from mlops_kit.schedule.store import ScheduleStore

    proj = project(args)
    store = ScheduleStore.of(proj.state_dir)
    action = args.action
    if action in ("list", "runs", "key"):
        if args.name is not None and action != "runs":
            raise ParameterError("name", f"{action} takes no schedule name")
    elif args.name is None:
        raise ParameterError("name", f"{action} needs a schedule name")
    if action == "add":
        return _add(args, proj, store)
    if action == "list":
        return _list(proj, store)
    if action == "runs":
        rows = [_run_row(r) for r in store.runs(args.name, limit=args.limit)]
        print_table(rows) if rows else print("no runs yet")
        return 0
    if action == "key":
        from mlops_kit.schedule.retrain import create_schedule_key

        key = create_schedule_key(proj)
        identity = proj.settings.schedule.identity
        print(f"{identity}: {key} (public key {key}.pub)")
        print(f"register it: mlops-kit signers add {identity} {key}.pub --as NAME --key YOUR_KEY")
        return 0
    if action in ("cronjob", "workflow", "kfp"):
        return _scale_out(args, proj, store.get(args.name))
    changed = {"pause": store.pause, "resume": store.resume, "remove": store.remove}[action](
        args.name
    )
    print(
        f"{action}d schedule {changed.name}"
        if action != "remove"
        else f"removed schedule {changed.name} (its run history stays)"
    )
    return 0


def _add(args: argparse.Namespace, proj: Project, store: ScheduleStore) -> int:
    from mlops_kit.gitops.deploy import current_actor
    from mlops_kit.schedule.retrain import check_parameters
    from mlops_kit.schedule.store import Schedule

    if args.cron is None:
        raise ParameterError("--cron", "schedule add needs --cron EXPRESSION")
    parameters = dict(parse_parameter(p) for p in args.parameter)
    preflight(parameters, args.config)
    check_parameters(proj, parameters)
    added = store.add(
        Schedule(
            args.name,
            args.cron,
            retries=args.retries,
            on_new_data=args.on_new_data,
            parameters=parameters,
            created_by=(args.actor or current_actor()).strip(),
        )
    )
    print(f"added schedule {added.name}: {added.cron}, next run {added.next_run}")
    print("the embedded scheduler runs it: mlops-kit scheduler (mlops-kit down stops it)")
    return 0


def _list(proj: Project, store: ScheduleStore) -> int:
    from mlops_kit.schedule import scheduler

    schedules = store.all()
    running = scheduler.status(proj)
    if not schedules:
        print("no schedules: mlops-kit schedule add NAME --cron '0 3 * * *'")
    else:
        rows = []
        for s in schedules:
            last = store.runs(s.name, limit=1)
            rows.append(
                {
                    "name": s.name,
                    "cron": s.cron,
                    "retries": s.retries,
                    "on_new_data": "yes" if s.on_new_data else "no",
                    "state": "paused" if s.paused else "active",
                    "next_run": "-" if s.paused else s.next_run,
                    "last_run": f"{last[0].status} {last[0].started_at}" if last else "-",
                }
            )
        print_table(rows)
    print(
        f"scheduler: running (pid {running.pid})"
        if running
        else "scheduler: not running (start it: mlops-kit scheduler)"
    )
    return 0


def _run_row(r: Run) -> dict[str, Any]:
    return {
        "run": r.id,
        "schedule": r.schedule,
        "trigger": r.trigger,
        "started": r.started_at,
        "status": r.status,
        "attempts": len(r.attempts),
        "detail": r.detail[:60],
        "log": r.log,
    }


def _scale_out(args: argparse.Namespace, proj: Project, schedule: Schedule) -> int:
    from mlops_kit.schedule import scaleout

    if args.action == "cronjob":
        text, sha = scaleout.commit_cronjob(proj, schedule, actor=args.actor, commit=not args.print)
        if args.print:
            print(text, end="")
        else:
            done = sha[:10] if sha else "unchanged"
            print(f"committed {scaleout.cronjob_path(schedule)} ({done})")
        return 0
    if args.action == "workflow":
        written = scaleout.write_workflow(proj, schedule, Path(args.repo_dir), force=args.force)
        for path in written:
            print(f"wrote {path}")
        return 0
    out = scaleout.compile_kfp(proj, schedule, Path(args.output))
    print(f"compiled the Kubeflow pipeline to {out}")
    return 0


def cmd_scheduler(args: argparse.Namespace) -> int:
    from mlops_kit.schedule import scheduler

    proj = project(args)
    if args.action == "run":
        import logging

        # The process's log (scheduler.log when started in the background): each run, each wait.
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
        scheduler.Scheduler(proj).serve()
        return 0
    if args.action == "stop":
        print("stopped the scheduler" if scheduler.stop(proj) else "the scheduler was not running")
        return 0
    if args.action == "status":
        info = scheduler.status(proj)
        print(
            f"running (pid {info.pid}, since {info.started_at}), log {info.log}"
            if info
            else "not running"
        )
        return 0 if info else 3
    info = scheduler.start(proj)
    print(f"scheduler running (pid {info.pid}), log {info.log}; stop it: mlops-kit down")
    return 0


def register(add: AddCommand) -> None:
    """Add ``retrain``, ``schedule`` and ``scheduler``."""
    rt = add(
        "retrain",
        "run what one scheduled run does: pipeline, gate, staging, smoke, load test, "
        "promotion request (and the promotion when the policy says auto_promote)",
        RETRAIN_EXAMPLE,
        cmd_retrain,
    )
    _parameters(rt)
    rt.add_argument(
        "--on-new-data",
        action="store_true",
        help="do nothing when the data's fingerprint equals that of the version staging serves",
    )
    rt.add_argument(
        "--since-fingerprint",
        metavar="SHA256",
        help="do nothing when the data's fingerprint is this one",
    )
    rt.add_argument("--schedule", metavar="NAME", help="the schedule this run is for (records)")
    rt.add_argument("--result", metavar="FILE", help="also write the outcome as JSON here")
    rt.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add_actor(rt, "who requests the promotion the run opens (default: $MLOPS_KIT_ACTOR or login)")

    sc = add(
        "schedule",
        "add, list, pause, resume and remove scheduled retrain runs; "
        "render them for Kubernetes, CI and Kubeflow",
        SCHEDULE_EXAMPLES,
        cmd_schedule,
    )
    sc.add_argument("action", choices=ACTIONS, help="what to do (see examples)")
    sc.add_argument("name", nargs="?", help="the schedule's name (lowercase, digits, '-')")
    sc.add_argument(
        "--cron",
        metavar="EXPRESSION",
        help="add: 5 fields (minute hour day month weekday), or 6 with seconds first; UTC",
    )
    sc.add_argument(
        "--retries",
        type=int,
        default=0,
        help="add: retries of a failed run, with exponential backoff (default 0)",
    )
    sc.add_argument(
        "--on-new-data",
        action="store_true",
        help="add: run only when the data's fingerprint changed since the last successful run",
    )
    _parameters(sc)
    sc.add_argument("--limit", type=int, default=20, help="runs: at most this many (default 20)")
    sc.add_argument("--print", action="store_true", help="cronjob: print it, do not commit")
    sc.add_argument(
        "--repo-dir",
        default=".",
        metavar="DIR",
        help="workflow: the model repository (default: here)",
    )
    sc.add_argument("--force", action="store_true", help="workflow: overwrite the file")
    sc.add_argument(
        "-o",
        "--output",
        default="build/retrain-pipeline.yaml",
        metavar="FILE",
        help="kfp: where the compiled pipeline goes",
    )
    add_actor(
        sc,
        "add: the schedule's owner, requester of its promotions; cronjob: who "
        "commits (default: $MLOPS_KIT_ACTOR or login)",
    )

    sr = add(
        "scheduler",
        "start, stop or check the embedded scheduler (a background process; "
        "`mlops-kit down` stops it too)",
        "mlops-kit scheduler\nmlops-kit scheduler status",
        cmd_scheduler,
    )
    sr.add_argument(
        "action",
        nargs="?",
        default="start",
        choices=["start", "stop", "status", "run"],
        help="start (default) in the background; run: in the foreground",
    )


def _parameters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-p",
        "--parameter",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a pipeline notebook parameter, as for `mlops-kit run` (repeatable)",
    )

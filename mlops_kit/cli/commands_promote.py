"""Promotion commands: open, list and decide requests, roll back, and the audit history."""

from __future__ import annotations

import argparse
from datetime import datetime

from mlops_kit.cli._common import AddCommand, add_actor, project, serving_now

STATUSES = [
    "pending", "approved", "rejected", "rolling_out", "paused", "rolled_out", "failed", "superseded"
]  # fmt: skip


def cmd_request(args: argparse.Namespace) -> int:
    from mlops_kit.promote.promotion import Promotions

    proj = project(args)
    request = Promotions(proj).open(
        args.version, from_env=args.from_env, to_env=args.to_env, requested_by=args.actor
    )
    print(f"opened {request.id}: v{request.candidate} {request.from_env} -> {request.to_env}")
    print(f"now: {serving_now(proj, request.to_env)}")
    print(f"approve: mlops-kit approve {request.id} --as NAME --key ~/.ssh/id_ed25519")
    return 0


def cmd_requests(args: argparse.Namespace) -> int:
    from mlops_kit.promote.promotion import Promotions

    requests = Promotions(project(args)).all(args.status)
    if not requests:
        print("no promotion requests")
    for r in requests:
        who = ", ".join(r.approvers) or "-"
        print(f"{r.id}  v{r.candidate} {r.from_env}->{r.to_env}  {r.status:<10} "
              f"by {r.requested_by}  approved by {who}  {r.outcome}".rstrip())  # fmt: skip
    return 0


def cmd_decide(args: argparse.Namespace) -> int:
    from mlops_kit.promote.promotion import Promotions

    promotions = Promotions(project(args))
    if args.command == "approve":
        request = promotions.approve(args.request, args.actor, args.comment, signing_key=args.key)
    else:
        request = promotions.reject(args.request, args.actor, args.comment, signing_key=args.key)
    print(f"{request.id}: {request.status}" + (f" ({request.outcome})" if request.outcome else ""))
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    from mlops_kit.promote.promotion import Promotions

    proj = project(args)
    sha = Promotions(proj).rollback(args.environment, args.actor)
    print(
        f"rolled back {args.environment} ({sha[:10]}); now: {serving_now(proj, args.environment)}"
    )
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    from mlops_kit.gitops import audit

    proj = project(args)
    if args.at:
        when = args.at
        version = audit.served_at(proj, args.environment, when, args.model)
        print(f"{args.environment} served v{version} at {when.isoformat()}" if version
              else f"{args.environment} served nothing at {when.isoformat()}")  # fmt: skip
        return 0
    events = audit.history(proj, args.model)
    if not events:
        print("no deployments recorded")
        return 0
    print(audit.table(events).to_string(index=False))
    return 0


def iso_time(text: str) -> datetime:
    """An ISO 8601 time for ``--at``; argparse turns the ValueError into a usage error."""
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is no ISO time; e.g. 2026-11-23T12:00:00+00:00"
        ) from None


def register(add: AddCommand) -> None:
    """Add ``request``, ``requests``, ``approve``, ``reject``, ``rollback``, ``history``."""
    req = add(
        "request",
        "open a promotion request (default: what staging serves, to production)",
        "mlops-kit request 3 --from-env staging --to-env production --as alice",
        cmd_request,
    )
    req.add_argument(
        "version",
        nargs="?",
        help="version to promote (default: the one the source environment serves)",
    )
    req.add_argument(
        "--from-env",
        dest="from_env",
        metavar="ENV",
        help="environment the candidate comes from (default: the staging one)",
    )
    req.add_argument(
        "--to-env",
        dest="to_env",
        metavar="ENV",
        help="environment to promote to (default: the production one)",
    )
    add_actor(req, "who requests (default: $MLOPS_KIT_ACTOR or login)")

    reqs = add(
        "requests",
        "list promotion requests",
        "mlops-kit requests --status pending",
        cmd_requests,
    )
    reqs.add_argument("--status", choices=STATUSES, help="only requests in this state")

    for name, text, example in (
        ("approve", "approve a promotion request (rolls out once the policy is met)",
         "mlops-kit approve 20261123-120000-wine-classifier-v3 --as bob -m 'metrics hold'"),
        ("reject", "reject a promotion request, saying why",
         "mlops-kit reject 20261123-120000-wine-classifier-v3 --as bob -m 'recall dropped'"),
    ):  # fmt: skip
        dec = add(name, text, example, cmd_decide)
        dec.add_argument("request", help="request id (a unique prefix is enough)")
        add_actor(dec, "your name, checked against the environment's approvers", required=True)
        dec.add_argument("--comment", "-m", default="", help="comment (required to reject)")
        dec.add_argument(
            "--key",
            metavar="PATH",
            help="your private SSH key: the decision is signed with it and counts only if the "
            "signature verifies for your name (default: $MLOPS_KIT_SIGNING_KEY, else git config "
            "user.signingkey)",
        )

    rb = add(
        "rollback",
        "step an environment back to its previous version (git revert, sync, alias)",
        "mlops-kit rollback production --as bob",
        cmd_rollback,
    )
    rb.add_argument("environment", help="environment to step back, e.g. production")
    add_actor(rb, "who rolls back (default: $MLOPS_KIT_ACTOR or login)")

    hist = add(
        "history",
        "who requested, approved and rolled out what, when",
        "mlops-kit history --at 2026-11-23T12:00:00+00:00 --environment production",
        cmd_history,
    )
    hist.add_argument("model", nargs="?", help="registered model name (default: the project's)")
    hist.add_argument("--at", type=iso_time, metavar="TIME",
                      help="ISO time with zone: which version served then")  # fmt: skip
    hist.add_argument("--environment", default="production", metavar="ENV",
                      help="environment --at asks about (default: production)")  # fmt: skip

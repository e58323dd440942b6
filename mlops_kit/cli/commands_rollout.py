"""``mlops-kit rollout status|continue|abort``: watch and steer a progressive rollout."""

from __future__ import annotations

import argparse

from mlops_kit.cli._common import AddCommand, add_actor, print_table, project, serving_now

ACTIONS = ("status", "continue", "abort")


def cmd_rollout(args: argparse.Namespace) -> int:
    from mlops_kit.errors import ConfigError, ParameterError
    from mlops_kit.promote import progressive
    from mlops_kit.promote.promotion import Promotions

    proj = project(args)
    promotions = Promotions(proj)
    if args.action == "status":
        if args.request:
            requests = [promotions.get(args.request)]
        else:
            requests = [r for r in promotions.all() if r.rollout]
            requests = [r for r in requests if r.status in ("rolling_out", "paused")] or requests[
                -1:
            ]
        if not requests:
            raise ConfigError("no progressive rollout recorded yet")
        for request in requests:
            print(f"{request.id}: {request.rollout.get('strategy')} of v{request.candidate} "
                  f"to {request.to_env}: {request.status} ({request.outcome})")  # fmt: skip
            rows = progressive.timeline_rows(request)
            if rows:
                print_table(rows)
            print(f"now: {serving_now(proj, request.to_env)}")
        return 0
    if not args.actor:
        raise ParameterError("--as", f"rollout {args.action} needs your name (--as NAME)")
    if not args.request:
        raise ParameterError("request", f"rollout {args.action} needs the request id")
    request = progressive.resume(
        promotions, args.request, args.actor, args.action, args.comment, signing_key=args.key
    )
    print(f"{request.id}: {request.status} ({request.outcome})")
    return 0


def register(add: AddCommand) -> None:
    """Add ``rollout``."""
    cmd = add(
        "rollout",
        "show a progressive rollout's timeline, or continue / abort a paused one",
        "mlops-kit rollout status\n"
        "mlops-kit rollout continue 20261123-120000-wine-classifier-v3 --as bob\n"
        "mlops-kit rollout abort 20261123-120000-wine-classifier-v3 --as bob -m 'too quiet'",
        cmd_rollout,
    )
    cmd.add_argument("action", choices=ACTIONS, help="status, continue or abort")
    cmd.add_argument(
        "request",
        nargs="?",
        help="request id, a unique prefix is enough (status: default the running ones)",
    )
    add_actor(cmd, "your name, checked against the environment's approvers (continue, abort)")
    cmd.add_argument("--comment", "-m", default="", help="why you continue or abort")
    cmd.add_argument(
        "--key",
        metavar="PATH",
        help="your private SSH key: the decision is signed with it (default: "
        "$MLOPS_KIT_SIGNING_KEY, else git config user.signingkey)",
    )

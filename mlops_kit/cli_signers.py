"""``mlops-kit signers``: who may sign decisions (the GitOps repository's ``allowed_signers``)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

EXAMPLES = """\
examples:
  mlops-kit signers list
  mlops-kit signers add carol ~/carol.pub --as alice --key ~/.ssh/id_ed25519
  mlops-kit signers demo alice bob          # labelled demo keys in the state dir
  mlops-kit signers verify 20261202-      # re-check a request's signatures
"""


def add_parser(add: Callable[..., argparse.ArgumentParser], project: Callable[..., Any]) -> None:
    """Register the ``signers`` command on the subparser factory ``add``."""
    sig = add(
        "signers",
        help="who may sign approvals: list, add, demo keys, verify a request",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sig.add_argument(
        "action", choices=["list", "add", "demo", "verify"], help="what to do (see examples)"
    )
    sig.add_argument(
        "names",
        nargs="*",
        help="add: NAME PUBLIC_KEY_FILE; demo: names to create demo keys for; verify: REQUEST",
    )
    sig.add_argument("--as", dest="actor", help="who makes the change (default: login name)")
    sig.add_argument(
        "--key", help="your private key, to sign the addition (default: $MLOPS_KIT_SIGNING_KEY)"
    )
    sig.set_defaults(handler=lambda args: run(args, project(args)))


def run(args: argparse.Namespace, project: Any) -> int:
    from mlops_kit.errors import ParameterError
    from mlops_kit.gitops.deploy import current_actor
    from mlops_kit.promote.promotion import Promotions

    promotions = Promotions(project)
    actor = args.actor or current_actor()
    if args.action == "list":
        listed = promotions.signers.all()
        for signer in listed:
            print(f"{signer.name}  {signer.key[:40]}…")
        if not listed:
            print("no signers: `mlops-kit signers add NAME KEY.pub` (or `signers demo`)")
        return 0
    if args.action == "add":
        if len(args.names) != 2:
            raise ParameterError("names", "add takes NAME PUBLIC_KEY_FILE")
        name, key_file = args.names
        sha = promotions.signers.add(
            name, Path(key_file).expanduser().read_text(), actor=actor, reviewer_key=args.key
        )
        print(f"{name} may sign decisions ({sha[:10]})" if sha else f"{name} was already listed")
        return 0
    if args.action == "demo":
        keys = promotions.signers.demo(project.state_dir, args.names, actor=actor)
        for name, path in keys.items():
            print(f"{name}: {path}  (DEMO KEY: unencrypted, for the demo only)")
        return 0
    if len(args.names) != 1:
        raise ParameterError("names", "verify takes REQUEST")
    request = promotions.get(args.names[0])
    bad = 0
    for decision, ok in promotions.verify_decisions(request):
        bad += not ok
        verdict = "verified" if ok else f"NOT VERIFIED (identity: {decision.identity})"
        print(f"{decision.kind} by {decision.actor} at {decision.at}: {verdict}")
    return 1 if bad else 0

"""``mlops-kit signers``: who may sign decisions (the GitOps repository's ``allowed_signers``)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from mlops_kit.cli._common import AddCommand, add_actor, project

EXAMPLES = """\
mlops-kit signers list
mlops-kit signers add carol ~/carol.pub --as alice --key ~/.ssh/id_ed25519
mlops-kit signers demo alice bob
mlops-kit signers verify 20261202-120000-wine-classifier-v3
"""


def register(add: AddCommand) -> None:
    """Add ``signers``: list, add, demo keys, verify a request's signatures."""
    sig = add(
        "signers",
        "who may sign approvals: list, add, demo keys, verify a request",
        EXAMPLES,
        lambda args: run(args, project(args)),
    )
    sig.add_argument(
        "action", choices=["list", "add", "demo", "verify"], help="what to do (see examples)"
    )
    sig.add_argument(
        "names",
        nargs="*",
        help="add: NAME PUBLIC_KEY_FILE; demo: names to create demo keys for; verify: REQUEST",
    )
    add_actor(sig, "who makes the change (default: $MLOPS_KIT_ACTOR or login)")
    sig.add_argument(
        "--key", help="your private key, to sign the addition (default: $MLOPS_KIT_SIGNING_KEY)"
    )


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

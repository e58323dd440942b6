"""The ``mlops-kit`` command line: every subcommand is a thin call into the library.

One module per group of commands (``commands_pipeline``, ``commands_deploy``,
``commands_promote``, ``commands_tools``), each with a ``register(add)``; ``_common`` holds what
they share. Every argument has help, every subcommand's help ends with an example, the actor
is ``--as`` everywhere.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from mlops_kit.cli import (
    commands_deploy,
    commands_monitor,
    commands_pipeline,
    commands_project,
    commands_promote,
    commands_rollout,
    commands_schedule,
    commands_signers,
    commands_snapshots,
    commands_tools,
)
from mlops_kit.cli._common import PROG, Handler, run, subcommands

GROUPS = (
    commands_project,
    commands_pipeline,
    commands_snapshots,
    commands_deploy,
    commands_promote,
    commands_rollout,
    commands_schedule,
    commands_signers,
    commands_tools,
    commands_monitor,
)
CONFIG_HELP = "project file (default: $MLOPS_KIT_CONFIG, else the nearest mlops.yaml upwards)"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, one subparser per command."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="CI/CD for ML models: train, deploy, promote, load test.",
        epilog="example:\n  mlops-kit run 01 02 --as alice\n  mlops-kit status",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", help=CONFIG_HELP)
    # --config may also follow the command; SUPPRESS keeps it from overwriting the first one.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", default=argparse.SUPPRESS, help=CONFIG_HELP)
    sub = parser.add_subparsers(
        dest="command",
        required=True,
        metavar="COMMAND",
        help="one of the commands below; COMMAND --help for its options",
    )
    add = subcommands(sub, [common])
    for group in GROUPS:
        group.register(add)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: run a command; print toolkit errors as one line, no traceback."""
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    return run(handler, args)


__all__ = ["build_parser", "main"]

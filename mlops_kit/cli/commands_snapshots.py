"""Snapshot commands: list the snapshots of registered versions, restore one, reproduce one."""

from __future__ import annotations

import argparse
from pathlib import Path

from mlops_kit.cli._common import AddCommand, print_table, project


def cmd_snapshots(args: argparse.Namespace) -> int:
    from mlops_kit.pipeline import snapshots

    rows = snapshots.listing(project(args))
    if not rows:
        print("no snapshots yet: versions registered by the pipeline (`mlops-kit run 02`) get one")
        return 0
    print_table(rows)
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from mlops_kit.pipeline import snapshots

    written = snapshots.restore(project(args), args.version, Path(args.to), force=args.force)
    for path in written:
        print(path)
    print(f"restored {len(written)} file(s) of v{args.version}, each checked against its sha256")
    return 0


def cmd_reproduce(args: argparse.Namespace) -> int:
    from mlops_kit.pipeline.reproduce import reproduce

    result = reproduce(project(args), args.version, tolerance=args.tolerance, progress=True)
    for warning in result.warnings:
        print(f"warning: {warning}")
    rows = [{**row, "equal": "yes" if row["equal"] else "NO"} for row in result.rows]
    print_table(rows)
    result.raise_for_mismatch()
    print(f"v{result.version} reproduced: every metric equal within {result.tolerance:g}")
    return 0


def register(add: AddCommand) -> None:
    """Add ``snapshots``, ``restore`` and ``reproduce``."""
    from mlops_kit.pipeline.reproduce import TOLERANCE

    add(
        "snapshots",
        "list the data snapshots of registered versions (version, digest, files, size)",
        "mlops-kit snapshots",
        cmd_snapshots,
    )
    restore = add(
        "restore",
        "write a version's input data back, byte-identical (digests checked)",
        "mlops-kit restore 3 --to restored/",
        cmd_restore,
    )
    restore.add_argument("version", help="the registered version")
    restore.add_argument("--to", required=True, metavar="DIR", help="an empty directory")
    restore.add_argument("--force", action="store_true", help="write into a non-empty DIR")
    reproduce = add(
        "reproduce",
        "re-run a version's pipeline from its snapshot and compare the metrics",
        "mlops-kit reproduce 3",
        cmd_reproduce,
    )
    reproduce.add_argument("version", help="the registered version")
    reproduce.add_argument(
        "--tolerance", type=float, default=TOLERANCE,
        help=f"largest difference that counts as equal (default {TOLERANCE:g})",
    )  # fmt: skip

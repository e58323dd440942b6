"""The ``mlops-kit`` command line: every subcommand is a thin call into the library."""

from __future__ import annotations

import argparse
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
    from mlops_kit.training import training_params

    training = {k: v for k, v in parameters.items() if k in TrainingSettings.model_fields}
    if training:
        training_params(load_settings(config).training, **training)


def cmd_run(args: argparse.Namespace) -> int:
    from mlops_kit.runner import run_notebooks

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
    from mlops_kit.registry import Registry

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


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, one subparser per command."""
    parser = argparse.ArgumentParser(
        prog="mlops-kit", description="CI/CD for ML models: train, deploy, promote, load test."
    )
    parser.add_argument("--config", help="project file (default: $MLOPS_KIT_CONFIG or mlops.yaml)")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="execute pipeline notebooks with papermill")
    run.add_argument("notebooks", nargs="*", help="names, prefixes (01) or paths; default: all")
    run.add_argument("-p", "--parameter", action="append", default=[], metavar="KEY=VALUE")
    run.add_argument("-o", "--output-dir", default="build/notebooks")
    run.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    run.set_defaults(handler=cmd_run)

    versions = sub.add_parser("versions", help="list registered versions with aliases and lineage")
    versions.set_defaults(handler=cmd_versions)
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

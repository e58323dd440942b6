"""Pipeline commands: run the notebooks, list registered versions, set up the environments."""

from __future__ import annotations

import argparse
import os
from typing import Any

from mlops_kit.cli._common import AddCommand, add_actor, print_table
from mlops_kit.errors import ParameterError


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
    if args.reset_champion:
        parameters["reset_champion"] = True
    preflight(parameters, args.config)
    if args.actor:
        # The kernels inherit the environment; the library reads the actor from it.
        os.environ["MLOPS_KIT_ACTOR"] = args.actor
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
    print_table(rows)
    return 0


def cmd_setup(args: argparse.Namespace) -> int:
    from mlops_kit.targets import setup as environments

    project = environments.load_project(args.config, args.target)
    report = environments.setup(project, args.target, apply_argocd=args.apply_argocd)
    for check in report.checks:
        print(f"{'ok  ' if check.ok else 'FAIL'} {check.name}: {check.detail}")
    report.raise_for_failure()
    return 0


def register(add: AddCommand) -> None:
    """Add ``run``, ``versions`` and ``setup``."""
    run = add(
        "run",
        "execute pipeline notebooks with papermill and render each to HTML",
        "mlops-kit run 02 -p dataset=iris -p n_estimators=50 --as alice",
        cmd_run,
    )
    run.add_argument(
        "notebooks", nargs="*", help="names, prefixes (02) or paths; default: every notebook"
    )
    run.add_argument(
        "-p", "--parameter", action="append", default=[], metavar="KEY=VALUE",
        help="a notebook parameter, its value read as YAML (repeatable): -p n_estimators=50",
    )  # fmt: skip
    run.add_argument(
        "-o", "--output-dir", metavar="DIR",
        help="where executed notebooks and HTML go (default: the project's reports_dir)",
    )  # fmt: skip
    run.add_argument(
        "--reset-champion", action="store_true",
        help="gate the new version against no champion (after a deliberate schema change); "
        "the same as -p reset_champion=true",
    )  # fmt: skip
    add_actor(run, "who runs the pipeline: requester of the promotion it opens "
                   "(default: $MLOPS_KIT_ACTOR or login)")  # fmt: skip
    run.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    add(
        "versions",
        "list registered versions with aliases, gate verdicts and lineage",
        "mlops-kit versions",
        cmd_versions,
    )

    st = add(
        "setup",
        "create and check the environments (what notebook 01 does)",
        "mlops-kit setup --target kubernetes --apply-argocd",
        cmd_setup,
    )
    st.add_argument(
        "--target", choices=["local", "kubernetes", "sagemaker"],
        help="deployment target of every environment (default: as configured)",
    )  # fmt: skip
    st.add_argument(
        "--apply-argocd", action="store_true", help="apply the Argo CD Applications (kubernetes)"
    )

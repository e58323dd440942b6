"""Project commands: scaffold a model repository, open it in JupyterLab."""

from __future__ import annotations

import argparse

from mlops_kit.cli._common import AddCommand


def cmd_init(args: argparse.Namespace) -> int:
    from mlops_kit.scaffold import init

    print("\n".join(f"wrote {path}" for path in init(args.directory, ci=args.ci)))
    print(f"next: cd {args.directory} && mlops-kit run 01 02, or mlops-kit lab to open it")
    return 0


def cmd_lab(args: argparse.Namespace) -> int:
    from mlops_kit.notebook.lab import exec_lab, lab_command
    from mlops_kit.settings import load_settings

    settings, browser = load_settings(args.config), not args.no_browser
    command = lab_command(settings, args.port, open_browser=browser, extra_args=args.jupyter_args)
    print(f"JupyterLab on 127.0.0.1 at {command.cwd} (Ctrl-C to stop)", flush=True)
    exec_lab(command)
    return 0


def register(add: AddCommand) -> None:
    """Add ``init`` and ``lab``."""
    ini = add(
        "init",
        "scaffold a model repository: mlops.yaml, the notebooks, .gitignore, optionally CI",
        "mlops-kit init churn-model --ci github",
        cmd_init,
    )
    ini.add_argument("directory", nargs="?", default=".", help="where (default: here)")
    ini.add_argument("--ci", choices=["github", "gitlab", "jenkins"], help="add this CI pipeline")
    lab = add(
        "lab",
        "open the project in JupyterLab (127.0.0.1, the project's settings for every kernel)",
        "mlops-kit lab --port 8890",
        cmd_lab,
    )
    lab.add_argument("--port", type=int, help="serve on this port (default: 8888 or the next)")
    lab.add_argument("--no-browser", action="store_true", help="do not open a browser")
    lab.add_argument(
        "jupyter_args", nargs=argparse.REMAINDER, help="after --: arguments for jupyter itself"
    )

"""``mlops-kit lab``: JupyterLab on 127.0.0.1 at the project's root, with the project's settings.

JupyterLab starts each kernel in its notebook's directory (``notebooks/``); the kernels find
the project file by discovery anyway, and get it as ``$MLOPS_KIT_CONFIG`` besides, so a
notebook opened anywhere under the root reads the same settings and state as ``mlops-kit run``.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mlops_kit.discovery import CONFIG_VARIABLE
from mlops_kit.errors import MissingDependencyError, ParameterError
from mlops_kit.settings import Settings, require_project


@dataclass(frozen=True)
class LabCommand:
    """How to start JupyterLab for a project: argv, working directory and environment."""

    argv: list[str]
    cwd: Path
    env: dict[str, str]


def lab_command(
    settings: Settings,
    port: int | None = None,
    *,
    open_browser: bool = True,
    extra_args: Sequence[str] = (),
) -> LabCommand:
    """The JupyterLab command for the project ``settings`` were loaded from.

    Serves the project's root on 127.0.0.1 only (``port``: that port or fail; None: Jupyter's
    default, 8888 or the next free one), with ``--allow-root`` when running as root (CI
    containers) and ``$MLOPS_KIT_CONFIG`` set for the kernels. ``extra_args`` go to JupyterLab
    as they are (a leading ``--``, which separates them on the command line, is dropped).
    Needs a project file and JupyterLab (``pip install 'mlops-kit[lab]'``).
    """
    project_file = require_project(settings, "opening the project in JupyterLab")
    if importlib.util.find_spec("jupyterlab") is None:
        raise MissingDependencyError("jupyterlab", "lab")
    if port is not None and not 0 < port < 65536:
        raise ParameterError("port", f"must be between 1 and 65535, not {port}")
    root = project_file.parent
    argv = [sys.executable, "-m", "jupyterlab", "--ip=127.0.0.1", f"--ServerApp.root_dir={root}"]
    if port is not None:
        argv += [f"--port={port}", "--ServerApp.port_retries=0"]
    if not open_browser:
        argv.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        argv.append("--allow-root")
    extra = list(extra_args)
    argv += extra[1:] if extra[:1] == ["--"] else extra
    env = {**os.environ, CONFIG_VARIABLE: str(project_file)}
    return LabCommand(argv, root, env)


def exec_lab(command: LabCommand) -> None:
    """Replace this process with JupyterLab (signals and Ctrl-C then go to it directly)."""
    os.chdir(command.cwd)
    os.execve(command.argv[0], command.argv, command.env)  # noqa: S606 - our own argv

"""The custom-server flavour: a user's Python class behind seldon-core's microservice wrapper.

seldon-core (1.19, BSL-licensed) pins ``numpy<2``, so it never enters the toolkit's own
environment: it lives in a virtualenv of its own, which :func:`ensure_seldon_env` creates
(``mlops-kit seldon-env``) and :func:`seldon_python` finds. The local target starts the
wrapper with that environment's interpreter running :data:`BOOTSTRAP` (a script,
``seldon_bootstrap.py``), which binds it to loopback (the wrapper itself binds ``0.0.0.0``) and
tags every answer with the model version.

The wrapper speaks the Seldon protocol: ``POST /api/v1.0/predictions`` with
``{"data": {"names": [...], "ndarray": [[...], ...]}}``; :func:`encode_dataframe`,
:func:`decode_predictions` and :func:`served_version` are its client side.

This module imports nothing heavy at module level; the bootstrap script runs in the seldon
environment, never here. Its errors, :class:`~mlops_kit.errors.SeldonEnvMissing` and
:class:`~mlops_kit.errors.SeldonEnvError`, live in :mod:`mlops_kit.errors` (and are importable
from here).
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from mlops_kit.errors import ConfigError, SeldonEnvError, SeldonEnvMissing

__all__ = [
    "BOOTSTRAP",
    "HEALTH_PATH",
    "PREDICT_PATH",
    "SELDON_CORE",
    "SeldonEnvError",
    "SeldonEnvMissing",
    "default_env_path",
    "default_packages",
    "decode_predictions",
    "encode_dataframe",
    "ensure_seldon_env",
    "error_message",
    "interface_name",
    "is_seldon_url",
    "module_file",
    "served_version",
    "seldon_python",
]

SELDON_CORE = "seldon-core==1.19.0"
"""The wrapper release the custom flavour is built and tested against."""
PREDICT_PATH = "/api/v1.0/predictions"
"""Where the wrapper answers predictions (Seldon protocol)."""
HEALTH_PATH = "/health/ping"
"""The wrapper's liveness endpoint; it answers once the user's class has loaded."""
VERSION_TAG = "model_version"
"""The ``meta.tags`` entry :data:`BOOTSTRAP` adds to every answer (it spells it out too)."""
ENV_COMMAND = "mlops-kit seldon-env"
"""The command that creates the default seldon environment."""
_MARKER = ".mlops-kit-packages"
_CLASS = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")

BOOTSTRAP = Path(__file__).with_name("seldon_bootstrap.py")
"""The script the seldon environment runs: ``python BOOTSTRAP <folder> <host> <version> <args>``.

It binds the wrapper to ``host`` (the wrapper itself binds ``0.0.0.0``) and tags every answer
with the version; ``args`` are seldon-core-microservice's. It imports nothing of the toolkit.
"""


# -- the environment ---------------------------------------------------------------------------


def default_env_path(state_dir: Path | str) -> Path:
    """``<state_dir>/envs/seldon``: where ``mlops-kit seldon-env`` creates the environment."""
    return Path(state_dir).expanduser().absolute() / "envs" / "seldon"


def default_packages() -> list[str]:
    """seldon-core, plus scikit-learn and skops pinned to this environment's versions, pandas.

    Pinning scikit-learn and skops to the versions that trained and saved the models makes the
    custom server load and predict exactly as the registry's own environment does.
    """
    packages = [SELDON_CORE]
    for name in ("scikit-learn", "skops"):
        try:
            packages.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            packages.append(name)
    packages.append("pandas")
    return packages


def ensure_seldon_env(
    path: Path | str,
    extra_packages: Sequence[str] = (),
    *,
    base_python: str | None = None,
    timeout: float = 900.0,
) -> Path:
    """Create (or complete) a virtualenv at ``path`` with seldon-core; return its interpreter.

    Installs :func:`default_packages` and ``extra_packages`` with pip. An environment already
    holding exactly these packages is reused at once (its package list is recorded in
    ``.mlops-kit-packages``). ``base_python`` is the interpreter the venv is made from (default:
    the one behind the running Python). Needs the package index; raises
    :class:`SeldonEnvError` with pip's output when it cannot install.
    """
    path = Path(path).expanduser().absolute()
    python = path / "bin" / "python"
    packages = [*default_packages(), *extra_packages]
    marker = path / _MARKER
    wanted = "\n".join(packages) + "\n"
    up_to_date = python.exists() and marker.is_file() and marker.read_text() == wanted
    if up_to_date and _imports_seldon(python):
        return python
    if not python.exists():
        base = base_python or getattr(sys, "_base_executable", None) or sys.executable
        _run([base, "-m", "venv", str(path)], "could not create a virtualenv at " + str(path), 120)
    _run(
        [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q", *packages],
        f"pip could not install {' '.join(packages)} into {path}",
        timeout,
    )
    if not _imports_seldon(python):
        raise SeldonEnvError(f"{python} cannot import seldon_core after installing it")
    marker.write_text(wanted)
    return python


def seldon_python(configured: Path | None, state_dir: Path | str) -> Path:
    """The interpreter of the seldon environment: ``configured``, else the default one.

    Raises :class:`SeldonEnvMissing`, naming the command that creates it, when there is none.
    """
    if configured is not None:
        python = Path(configured).expanduser()
        if not python.exists():
            raise SeldonEnvMissing(
                f"serving.seldon_python is {str(python)!r}, which does not exist; create an "
                f"environment with seldon-core there, or unset it and run: {ENV_COMMAND}"
            )
        return python.absolute()
    python = default_env_path(state_dir) / "bin" / "python"
    if not python.exists():
        raise SeldonEnvMissing(
            "the custom flavour needs seldon-core, which lives in an environment of its own "
            f"(it pins numpy<2); create it with: {ENV_COMMAND}  (or point "
            "serving.seldon_python at the interpreter of an environment that has seldon-core)"
        )
    return python.absolute()


def interface_name(custom_class: str) -> str:
    """seldon-core's ``module.Class`` for our ``module:Class``; ConfigError if malformed."""
    if not _CLASS.match(custom_class):
        raise ConfigError(f"custom_class {custom_class!r} must read 'module:Class'")
    module, _, attr = custom_class.partition(":")
    return f"{module}.{attr}"


def module_file(code_dir: Path, custom_class: str) -> Path | None:
    """The file or package of ``custom_class``'s module under ``code_dir``, if there is one."""
    module = custom_class.partition(":")[0].replace(".", "/")
    for candidate in (code_dir / f"{module}.py", code_dir / module / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imports_seldon(python: Path) -> bool:
    try:
        done = subprocess.run(  # noqa: S603 - our own interpreter, fixed arguments
            [str(python), "-c", "import seldon_core.microservice"],
            capture_output=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def _run(command: list[str], failure: str, timeout: float) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    try:
        done = subprocess.run(  # noqa: S603 - fixed programs, arguments from the caller
            command, capture_output=True, text=True, timeout=timeout, check=False, env=env
        )
    except subprocess.TimeoutExpired as exc:
        raise SeldonEnvError(f"{failure}: no result within {timeout:g} s") from exc
    except OSError as exc:
        raise SeldonEnvError(f"{failure}: {exc}") from exc
    if done.returncode != 0:
        output = (done.stdout + done.stderr).strip().splitlines()
        raise SeldonEnvError(failure, "\n".join(output[-20:]))


# -- the protocol, client side -----------------------------------------------------------------


def is_seldon_url(url: str) -> bool:
    """Does ``url`` name a Seldon-protocol prediction endpoint?"""
    return url.rstrip("/").endswith(PREDICT_PATH)


def encode_dataframe(df: Any) -> dict[str, Any]:
    """A Seldon request body for ``df``: column names and rows (missing values as ``null``)."""
    rows = [
        [None if _missing(value) else _plain(value) for value in row]
        for row in df.itertuples(index=False, name=None)
    ]
    return {"data": {"names": [str(c) for c in df.columns], "ndarray": rows}}


def decode_predictions(body: dict[str, Any]) -> Any:
    """The predictions in a Seldon answer (``ndarray`` or ``tensor``), one per row."""
    import numpy as np

    data = body.get("data")
    if not isinstance(data, dict):
        kinds = sorted(k for k in body if k != "meta")
        raise ValueError(f"the answer has no 'data' (it has {kinds})")
    if "ndarray" in data:
        values = np.asarray(data["ndarray"])
    elif "tensor" in data:
        tensor = data["tensor"]
        values = np.asarray(tensor["values"]).reshape(tensor["shape"])
    else:
        raise ValueError(f"the answer's data holds neither ndarray nor tensor: {sorted(data)}")
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    return values


def served_version(body: dict[str, Any]) -> str | None:
    """The model version an answer came from (``meta.tags.model_version``), if it says."""
    tags = (body.get("meta") or {}).get("tags") or {}
    version = tags.get(VERSION_TAG)
    return None if version is None else str(version)


def error_message(body: Any) -> str:
    """The error text of a Seldon error answer (``status.info`` / ``status.reason``)."""
    if isinstance(body, dict) and isinstance(body.get("status"), dict):
        status = body["status"]
        return str(status.get("info") or status.get("reason") or status)[:500]
    return json.dumps(body)[:500]


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _plain(value: Any) -> Any:
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        value = item()
    if isinstance(value, int | float | str | bool):
        return value
    return str(value)

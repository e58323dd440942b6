"""Find the project file the way git finds ``.git``, and anchor its paths to its directory.

The project file is the one named (``--config``, then ``$MLOPS_KIT_CONFIG``), else the nearest
``mlops.yaml`` in the working directory or a directory above it. Its directory is the
project's root: a notebook whose kernel runs in ``notebooks/`` reads the same settings, and
the same state directory, as a command run at the root. Part of the settings layer: it
imports nothing of the toolkit but ``errors``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from mlops_kit.errors import ConfigError

PROJECT_FILE = "mlops.yaml"
CONFIG_VARIABLE = "MLOPS_KIT_CONFIG"
_URL = re.compile(r"^[^/]+:")  # scheme://… and scp-like host:path are no local paths


class PathOrUrl:
    """Marks a ``str`` field (``Annotated[str, PATH_OR_URL]``) holding a URL or a local path:
    a relative path in the project file is anchored like a ``Path`` field."""


PATH_OR_URL = PathOrUrl()


@dataclass(frozen=True)
class Discovery:
    """Where the project file was looked for, and what was found."""

    file: Path | None
    """The project file (absolute), or None."""
    searched: tuple[Path, ...]
    """The directories looked in for ``mlops.yaml``, nearest first (empty when one was named)."""

    def describe(self) -> str:
        """What was looked for, for a message: the directories and ``$MLOPS_KIT_CONFIG``."""
        where = ", ".join(str(d) for d in self.searched)
        return f"no {PROJECT_FILE} in {where} and ${CONFIG_VARIABLE} is not set"


def discover(
    config: str | os.PathLike[str] | None = None, start: str | os.PathLike[str] | None = None
) -> Discovery:
    """Find the project file: ``config``, else ``$MLOPS_KIT_CONFIG``, else the nearest
    ``mlops.yaml`` in ``start`` (default: the working directory) or a directory above it.

    A file that is named but missing is a ConfigError; finding none is not (see ``file``).
    """
    if config is None:
        config = os.environ.get(CONFIG_VARIABLE) or None
    if config is not None:
        path = Path(config).expanduser()
        if not path.is_file():
            raise ConfigError(f"config file {str(path)!r} does not exist")
        return Discovery(path.resolve(), ())
    here = Path(start if start is not None else Path.cwd()).resolve()
    searched = (here, *here.parents)
    for count, directory in enumerate(searched, start=1):
        candidate = directory / PROJECT_FILE
        if candidate.is_file():
            return Discovery(candidate, searched[:count])
    return Discovery(None, searched)


def anchor_data(model: type[BaseModel], data: dict[str, Any], base: Path) -> dict[str, Any]:
    """``data`` (one section as a file spells it) with relative paths made absolute on ``base``.

    Follows the model's fields into sections and lists of sections; keys the model does not
    know are left alone for validation to name.
    """
    out = dict(data)
    for key, value in data.items():
        field = model.model_fields.get(key)
        if field is None:
            continue
        section = _section(field.annotation)
        if _is_path(field.annotation) and isinstance(value, str):
            out[key] = str(_absolute(value, base))
        elif PATH_OR_URL in field.metadata and isinstance(value, str):
            out[key] = value if not value or _URL.match(value) else str(_absolute(value, base))
        elif section is not None and isinstance(value, dict):
            out[key] = anchor_data(section, value, base)
        elif section is not None and isinstance(value, list):
            out[key] = [anchor_data(section, v, base) if isinstance(v, dict) else v for v in value]
    return out


def anchor_defaults(model: BaseModel, base: Path | None) -> None:
    """Expand ``~`` in every path of ``model``; with a project root ``base``, make them absolute.

    Defaults (``.mlops``) go to the project's root; relative values that were given (from
    variables or keywords: values from the file are absolute already) to the working
    directory they were given in. Without a root, paths stay relative to the working directory.
    """
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            anchor_defaults(value, base)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, BaseModel):
                    anchor_defaults(item, base)
        elif isinstance(value, Path):
            path = value.expanduser()
            if base is not None and not path.is_absolute():
                path = (base if name not in model.model_fields_set else Path.cwd()) / path
            if path != value:
                object.__setattr__(model, name, path)


def _is_path(annotation: Any) -> bool:
    return annotation is Path or Path in getattr(annotation, "__args__", ())


def _section(annotation: Any) -> type[BaseModel] | None:
    for candidate in (annotation, *getattr(annotation, "__args__", ())):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _absolute(value: str, base: Path) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else base / path


def require_project(settings: Any, action: str) -> Path:
    """The project file of ``settings``, or a ConfigError saying that ``action`` needs one and
    where none was found.

    Everything that changes an environment calls it first: built-in defaults name no
    approvers, and a promotion must never fall back to "anyone may approve" because the
    command ran in a directory without a project file.
    """
    if settings.project_file is not None:
        return Path(settings.project_file)
    found = getattr(settings, "_discovery", None)
    looked = (
        found.describe()
        if found is not None
        else "these settings were not loaded from a project file"
    )
    raise ConfigError(
        f"{action} needs a project file, and none was found: {looked}; "
        "create one with `mlops-kit init` or name one with --config / $MLOPS_KIT_CONFIG"
    )

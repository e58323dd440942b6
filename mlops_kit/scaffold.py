"""``mlops-kit init``: turn a directory (a team's model repository) into an mlops-kit project.

It writes a commented ``mlops.yaml``, the four pipeline notebooks (the project's own copies,
which take precedence over the shipped ones), ``.gitignore`` entries for the state and the
reports, and on request a CI pipeline (:mod:`mlops_kit.ci`). Nothing is ever overwritten: when
a file it would write exists, it writes nothing and names the files in the way.
"""

from __future__ import annotations

import json
import os
import re
import string
from importlib import resources
from pathlib import Path

from mlops_kit.errors import ConfigError
from mlops_kit.settings import DEFAULT_CONFIG, NAME_PATTERN

GITIGNORE_ENTRIES = (".mlops/", "build/", ".ipynb_checkpoints/")
"""What ``.gitignore`` gets: the state directory, the reports and Jupyter's checkpoints."""


class _Template(string.Template):
    delimiter = "@@"


def project_name(directory: Path) -> str:
    """A valid project name (a lowercase DNS label) made from the directory's name."""
    name = re.sub(r"[^a-z0-9-]+", "-", directory.resolve().name.lower()).strip("-")[:63]
    name = name.rstrip("-")
    return name if re.fullmatch(NAME_PATTERN, name) else "my-project"


def render_project_file(project: str, approver: str) -> str:
    """The commented ``mlops.yaml`` for ``project``; ``approver`` is the only approver listed.

    Listing one person (the one who ran init) keeps the policy closed until reviewers are
    added: with four-eyes, nobody approves their own request.
    """
    if not re.fullmatch(NAME_PATTERN, project):
        raise ConfigError(f"{project!r} is not a valid project name (a lowercase DNS label)")
    model_name = f"{project[:52].rstrip('-')}-model"
    source = resources.files("mlops_kit") / "templates" / "project" / DEFAULT_CONFIG
    return _Template(source.read_text(encoding="utf-8")).substitute(
        project=project,
        model_name=model_name,
        approver=approver,
        approvers=json.dumps(approver),
    )


def planned_files(
    directory: Path, ci: str | None = None, project: str | None = None
) -> dict[Path, str | bytes]:
    """What :func:`init` writes: path → content (``.gitignore`` not included)."""
    from mlops_kit.gitops.deploy import current_actor
    from mlops_kit.notebook.runner import NOTEBOOK_GLOB, shipped_notebooks

    root = Path(directory)
    files: dict[Path, str | bytes] = {
        root / DEFAULT_CONFIG: render_project_file(project or project_name(root), current_actor()),
    }
    for notebook in sorted(shipped_notebooks().glob(NOTEBOOK_GLOB)):
        files[root / "notebooks" / notebook.name] = notebook.read_bytes()
    if ci is not None:
        from mlops_kit.ci import render_ci

        for relative, text in render_ci(ci, config=DEFAULT_CONFIG).items():
            files[root / relative] = text
    return files


def init(
    directory: str | os.PathLike[str] = ".", ci: str | None = None, *, project: str | None = None
) -> list[Path]:
    """Scaffold a model repository in ``directory`` (created if missing); the paths written.

    ``ci`` (``github``, ``gitlab``, ``jenkins``) adds that provider's pipeline; ``project``
    names the project (default: from the directory's name). An existing ``.gitignore`` gets
    the missing entries appended; any other file that exists stops it with a ConfigError
    naming them, before anything is written.
    """
    root = Path(directory)
    if root.exists() and not root.is_dir():
        raise ConfigError(f"{root} exists and is not a directory")
    files = planned_files(root, ci, project)
    existing = [path for path in files if path.exists() or path.is_symlink()]
    if existing:
        names = ", ".join(str(path.relative_to(root)) for path in existing)
        raise ConfigError(
            f"{root.resolve()} already has {names}; mlops-kit init overwrites nothing and wrote "
            "nothing: move them away, or init another directory"
        )
    written = []
    try:
        for path, content in files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content, encoding="utf-8", newline="\n")
            written.append(path)
        gitignore = _update_gitignore(root / ".gitignore")
    except OSError as exc:
        raise ConfigError(f"cannot write into {root}: {exc.strerror or exc}") from exc
    return written + ([gitignore] if gitignore else [])


def _update_gitignore(path: Path) -> Path | None:
    existing = path.read_text(encoding="utf-8") if path.is_file() else ""
    present = {line.strip() for line in existing.splitlines()}
    missing = [entry for entry in GITIGNORE_ENTRIES if entry not in present]
    if not missing:
        return None
    lead = "\n" if existing and not existing.endswith("\n") else ""
    block = lead + ("\n" if existing else "") + "# mlops-kit: local state and reports\n"
    with path.open("a", encoding="utf-8", newline="\n") as out:
        out.write(block + "\n".join(missing) + "\n")
    return path

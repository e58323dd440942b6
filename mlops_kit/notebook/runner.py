"""Run the pipeline notebooks headless with papermill and render each to HTML."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from mlops_kit import errors, redact
from mlops_kit.errors import ConfigError, NotebookFailed, ParameterError, ToolkitError
from mlops_kit.settings import Settings, load_settings
from mlops_kit.train.schema import schema_reason
from mlops_kit.train.training import PIPELINE_RUN_ENV

MAX_ERROR_LINE = 500
"""Characters of a failed cell's error quoted in NotebookFailed (the notebook has it all)."""


@dataclass(frozen=True)
class NotebookRun:
    """One executed notebook and its HTML rendering."""

    source: Path
    output: Path
    html: Path
    parameters: dict[str, Any]


NOTEBOOK_GLOB = "[0-9][0-9]_*.ipynb"


def shipped_notebooks() -> Path:
    """The pipeline notebooks that come with the toolkit.

    A wheel carries them as package data (``mlops_kit/_notebooks``); a source checkout or an
    editable install has them in the checkout's ``notebooks/``.
    """
    packaged = Path(str(resources.files("mlops_kit") / "_notebooks"))
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "notebooks"


def notebooks_dir(settings: Settings | None = None) -> Path:
    """The project's own ``notebooks/`` (beside its project file) when it holds numbered
    notebooks, else the notebooks shipped with the toolkit."""
    settings = settings if settings is not None else load_settings()
    if settings.project_dir is not None:
        own = settings.project_dir / "notebooks"
        if any(own.glob(NOTEBOOK_GLOB)):
            return own
    return shipped_notebooks()


def resolve(names: Sequence[str], folder: Path | None = None) -> list[Path]:
    """Paths for notebook names: a path, a file name, or a prefix such as ``02``, looked up
    in ``folder`` (default: :func:`notebooks_dir`)."""
    folder = folder if folder is not None else notebooks_dir()
    available = sorted(folder.glob(NOTEBOOK_GLOB))
    if not names:
        if not available:
            raise ConfigError(f"no notebooks found in {folder}")
        return available
    paths = []
    for name in names:
        path = Path(name)
        if path.suffix == ".ipynb" and path.is_file():
            paths.append(path)
            continue
        matches = [p for p in available if p.stem == name or p.stem.startswith(f"{name}_")]
        if len(matches) != 1:
            known = ", ".join(p.stem for p in available)
            raise ConfigError(f"no notebook {name!r}; available: {known}")
        paths.append(matches[0])
    return paths


def exit_code(ename: str) -> int:
    """The exit code for a cell that raised ``ename``: the ``exit_code`` of the toolkit error
    of that name in ``mlops_kit.errors``, 1 for any other exception."""
    error = getattr(errors, ename, None)
    if isinstance(error, type) and issubclass(error, ToolkitError):
        return error.exit_code
    return 1


def declared_parameters(path: Path) -> dict[str, Any]:
    """The names a notebook's ``parameters`` cell declares, with their inferred types."""
    import papermill

    return dict(papermill.inspect_notebook(str(path)))


def split_parameters(
    paths: Sequence[Path], parameters: Mapping[str, Any]
) -> dict[Path, dict[str, Any]]:
    """Give each notebook the parameters it declares; a name no notebook declares is an error."""
    declared = {path: declared_parameters(path) for path in paths}
    known = set().union(*declared.values()) if declared else set()
    for name, value in parameters.items():
        reason = redact.secret_reason(name, value)
        if reason is not None:
            raise ParameterError(
                name,
                f"refused: {reason}. Parameters are stored in the executed notebook, its HTML "
                "and the GitOps repository; pass credentials through the environment instead",
            )
        if name not in known:
            raise ParameterError(
                name, f"no notebook of this run declares it; known: {', '.join(sorted(known))}"
            )
    return {path: {k: v for k, v in parameters.items() if k in declared[path]} for path in paths}


@contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    # Kernels inherit the runner's environment: that is how they find the config and run id.
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def run_notebooks(
    names: Sequence[str] = (),
    parameters: Mapping[str, Any] | None = None,
    *,
    output_dir: str | os.PathLike[str] | None = None,
    config: str | os.PathLike[str] | None = None,
    progress_bar: bool = True,
    kernel_name: str | None = None,
    start_timeout: int = 120,
) -> list[NotebookRun]:
    """Execute notebooks in order into ``output_dir`` and render each to HTML.

    Names are looked up in :func:`notebooks_dir`. ``output_dir`` defaults to the settings'
    ``reports_dir``. The kernels get the project file as ``$MLOPS_KIT_CONFIG``, so they read
    the same settings whatever their working directory. A failing cell stops the run with
    NotebookFailed naming notebook, cell (``In [n]``, as JupyterLab shows it) and error in one
    line, exiting with the exit code of the toolkit error the cell raised; the executed
    notebook (and its HTML) is kept for inspection. Kernels run with encrypted transport
    (:mod:`mlops_kit.notebook.kernels`).
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    from mlops_kit.notebook.kernels import EncryptedKernelManager
    from mlops_kit.promote.evidence import REPORT_ENV

    settings = load_settings(config)
    paths = resolve(names, notebooks_dir(settings))
    per_notebook = split_parameters(paths, parameters or {})
    out_dir = Path(output_dir if output_dir is not None else settings.reports_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    env = {PIPELINE_RUN_ENV: os.environ.get(PIPELINE_RUN_ENV) or uuid.uuid4().hex[:12]}
    # Kernels cite their reports where this run writes them, not where the settings say.
    env.update({"MLOPS_KIT_REPORTS_DIR": str(out_dir.resolve()), REPORT_ENV: ""})
    if settings.project_file is not None:
        env["MLOPS_KIT_CONFIG"] = str(settings.project_file)
    runs = []
    with _environment(env):
        for path in paths:
            output = out_dir / path.name
            params = per_notebook[path]
            os.environ[REPORT_ENV] = str(output.with_suffix(".html").resolve())
            try:
                papermill.execute_notebook(
                    str(path),
                    str(output),
                    parameters=params,
                    progress_bar=progress_bar,
                    kernel_name=kernel_name,
                    start_timeout=start_timeout,
                    cwd=str(Path.cwd()),
                    kernel_manager_class=EncryptedKernelManager,
                )
            except PapermillExecutionError as exc:
                render_html(output)
                raise NotebookFailed(
                    path.name,
                    exc.cell_index,
                    exc.ename,
                    error_line(exc.evalue),
                    str(output),
                    exit_code=exit_code(exc.ename),
                    execution_count=exc.exec_count,
                ) from None
            except Exception as exc:
                raise ToolkitError(f"{path.name}: could not execute: {exc}") from exc
            runs.append(NotebookRun(path, output, render_html(output), params))
    return runs


def render_html(notebook: Path) -> Path:
    """Give an executed notebook its headline and render it to self-contained, offline HTML."""
    from mlops_kit.notebook.report import export_html

    return export_html(notebook)


def error_line(evalue: str) -> str:
    """A cell's error as one line for the terminal: its first line, at most ``MAX_ERROR_LINE``
    characters; MLflow's schema errors as their reason alone (their text quotes the data)."""
    text = (evalue or "").strip()
    reason = schema_reason(text)
    if reason is not None:
        return reason
    line = text.splitlines()[0] if text else ""
    return line if len(line) <= MAX_ERROR_LINE else line[: MAX_ERROR_LINE - 1].rstrip() + "…"

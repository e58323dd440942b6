"""Train with the project's entrypoint, track the run in MLflow and register a version.

The composition of the building blocks: :func:`~mlops_kit.train.data.load_data` (the data),
:func:`fit` (the entrypoint, :mod:`mlops_kit.train.entrypoint`),
:func:`~mlops_kit.train.metrics.evaluate` (held-out metrics) and :func:`log_and_register`,
inside one :func:`training_run`. :func:`train_and_register` does them all.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from mlops_kit import display
from mlops_kit.errors import ParameterError, RegistryError
from mlops_kit.settings import TrainingSettings
from mlops_kit.train import entrypoint
from mlops_kit.train.builtin import estimator_for
from mlops_kit.train.data import Dataset, fingerprint, load_data, load_dataset
from mlops_kit.train.entrypoint import Fitted, trusted_types
from mlops_kit.train.metrics import evaluate, score

if TYPE_CHECKING:
    from mlops_kit.project import Project

PIPELINE_RUN_ENV = "MLOPS_KIT_PIPELINE_RUN_ID"
TAG_PREFIX = "mlops."
PIP_REQUIREMENTS = entrypoint.REQUIREMENTS["sklearn"]
"""What a scikit-learn model needs; passing it skips MLflow's ~5 s inference."""


@dataclass(frozen=True)
class TrainingResult(display.Rich):
    """What one training run produced and where the registry keeps it."""

    model_name: str
    version: str
    run_id: str
    model_uri: str
    metrics: dict[str, float]
    params: dict[str, Any]
    lineage: dict[str, str] = field(default_factory=dict)

    def _repr_html_(self) -> str:
        metrics = display.table(
            [{"metric": k, "held-out value": f"{v:.4f}"} for k, v in sorted(self.metrics.items())]
        )
        return display.section(
            f"Registered {self.model_name} v{self.version}",
            display.paragraph(f"MLflow run <code>{display.esc(self.run_id)}</code>."),
            metrics,
        )

    def _figure_(self) -> display.Figure:
        shown = ", ".join(f"{k} {v:.4f}" for k, v in sorted(self.metrics.items())[:2])
        return display.Figure("registered", f"{self.model_name} v{self.version}: {shown}")


def training_params(defaults: TrainingSettings | None = None, **overrides: Any) -> TrainingSettings:
    """Merge notebook/CLI ``overrides`` into the configured training settings, validating each.

    An override of None means "as configured". ``params`` (a mapping, or YAML text of one) is
    merged over the configured ``params``; ``dataset`` given without ``data`` trains on that
    bundled set instead of the configured files.
    """
    base = (defaults or TrainingSettings()).model_dump()
    overrides = {k: v for k, v in overrides.items() if v is not None}
    unknown = sorted(set(overrides) - set(base))
    if unknown:
        raise ParameterError(unknown[0], f"unknown training parameter; known: {', '.join(base)}")
    if "params" in overrides:
        overrides["params"] = {**base["params"], **_mapping("params", overrides["params"])}
    if "dataset" in overrides and "data" not in overrides:
        overrides["data"] = None
    try:
        return TrainingSettings.model_validate({**base, **overrides})
    except ValidationError as exc:
        err = exc.errors()[0]
        name = ".".join(str(p) for p in err["loc"])
        raise ParameterError(name, f"{err['msg']} (got {err.get('input')!r})") from None


def _mapping(name: str, value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        import yaml

        try:
            value = yaml.safe_load(value) if value.strip() else {}
        except yaml.YAMLError as exc:
            raise ParameterError(name, f"not a YAML mapping: {exc}".replace("\n", " ")) from None
    if not isinstance(value, dict):
        raise ParameterError(name, f"must be a mapping of names to values (got {value!r})")
    return value


def build_estimator(params: TrainingSettings, task: str = "classification") -> Any:
    """The unfitted built-in estimator ``params`` describe, for ``task``."""
    return estimator_for(
        task,
        params.model_type,
        n_estimators=params.n_estimators,
        max_depth=params.max_depth,
        random_state=params.random_state,
    )


def lineage(data: Dataset, pipeline_run_id: str | None = None) -> dict[str, str]:
    """Tags that let anyone trace a model version back to code, data and pipeline run."""
    from mlops_kit import __version__

    return {
        f"{TAG_PREFIX}git_commit": git_commit(Path.cwd()),
        f"{TAG_PREFIX}data_fingerprint": data.fingerprint,
        f"{TAG_PREFIX}dataset": data.name,
        f"{TAG_PREFIX}data_source": data.source,
        f"{TAG_PREFIX}task": data.task,
        f"{TAG_PREFIX}pipeline_run_id": pipeline_run_id or pipeline_run(),
        f"{TAG_PREFIX}toolkit_version": __version__,
    }


def pipeline_run() -> str:
    """The pipeline run id the runner set for this run of notebooks, or a fresh one."""
    run = os.environ.get(PIPELINE_RUN_ENV)
    if not run:
        run = uuid.uuid4().hex[:12]
        os.environ[PIPELINE_RUN_ENV] = run
    return run


def git_commit(path: Path) -> str:
    """HEAD of the git work tree holding ``path`` (``-dirty`` if modified), else ``unversioned``."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=path, capture_output=True, text=True, timeout=10
        )
        if head.returncode != 0:
            return "unversioned"
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=path,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unversioned"
    return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


@dataclass(frozen=True)
class TrainingRun:
    """The MLflow run one training is tracked in, and the lineage tags its version gets."""

    run_id: str
    tags: dict[str, str]


@contextlib.contextmanager
def training_run(
    project: Project, data: Dataset, params: TrainingSettings, pipeline_run_id: str | None = None
) -> Iterator[TrainingRun]:
    """An MLflow run for training ``params`` on ``data``: parameters, lineage and owner tags
    logged; runs of dead processes marked failed first. MLflow's chatter is held back."""
    import mlflow

    from mlops_kit.train.runs import fail_stale_runs, owner_tags

    project.experiment_id()
    fail_stale_runs(project)
    tags = {**lineage(data, pipeline_run_id), f"{TAG_PREFIX}entrypoint": params.entrypoint}
    name = params.model_type if params.builtin else params.entrypoint.rpartition(":")[2]
    # MLflow prints "Successfully registered model ..." and INFO lines: not for cell output.
    with display.quiet(), mlflow.start_run(run_name=f"train-{data.name}-{name}") as run:
        mlflow.log_params(logged_params(params))
        mlflow.set_tags({**tags, **owner_tags()})
        yield TrainingRun(run.info.run_id, tags)


def logged_params(params: TrainingSettings) -> dict[str, Any]:
    """The run's parameters: where the data came from, the entrypoint and what it was given."""
    source = params.data.path if params.data is not None else params.dataset
    return {
        "entrypoint": params.entrypoint,
        "data" if params.data is not None else "dataset": source,
        "task": params.task,
        "test_size": params.test_size,
        **params.entrypoint_params(),
    }


def fit(project: Project, data: Dataset, params: TrainingSettings) -> Fitted:
    """Train with the project's entrypoint (imported from the project's directory)."""
    return entrypoint.run(
        params.entrypoint, data, params.entrypoint_params(), project.settings.project_dir
    )


def log_and_register(
    project: Project, data: Dataset, params: TrainingSettings, fitted: Fitted, run: TrainingRun
) -> TrainingResult:
    """In the active ``run``: log the held-out metrics (and the entrypoint's own), the model
    with its flavour, signature and input example; register it and tag the version."""
    import mlflow
    from mlflow.models import infer_signature

    metrics = evaluate(fitted, data)
    mlflow.log_metrics({**metrics, **fitted.extra_metrics})
    signature = infer_signature(data.X_test, fitted.predict(data.X_test))
    try:
        info = entrypoint.log_model(
            fitted,
            signature=signature,
            input_example=data.X_test.head(3),
            registered_model_name=project.model_name,
        )
    except Exception as exc:
        raise RegistryError(f"could not log and register the model: {exc}") from exc
    version = str(info.registered_model_version)
    client = project.client
    for key, value in {**run.tags, f"{TAG_PREFIX}run_id": run.run_id}.items():
        client.set_model_version_tag(project.model_name, version, key, value)
    return TrainingResult(
        model_name=project.model_name,
        version=version,
        run_id=run.run_id,
        model_uri=info.model_uri,
        metrics={**metrics, **fitted.extra_metrics},
        params=params.model_dump(),
        lineage=run.tags,
    )


def train_and_register(
    project: Project, data: Dataset, params: TrainingSettings, *, pipeline_run_id: str | None = None
) -> TrainingResult:
    """Train with the entrypoint, log params/metrics/model (with signature and input example)
    and register a version.

    The gate's metric is checked against the data's task first (ConfigError, nothing trained).
    The new version carries lineage tags: git commit, data fingerprint and source, task,
    entrypoint, pipeline run, toolkit version.
    """
    project.settings.gates.rule(data.task)
    with training_run(project, data, params, pipeline_run_id) as run:
        fitted = fit(project, data, params)
        return log_and_register(project, data, params, fitted, run)


__all__ = [
    "PIPELINE_RUN_ENV",
    "PIP_REQUIREMENTS",
    "TAG_PREFIX",
    "Dataset",
    "TrainingResult",
    "TrainingRun",
    "build_estimator",
    "evaluate",
    "fingerprint",
    "fit",
    "git_commit",
    "lineage",
    "load_data",
    "load_dataset",
    "log_and_register",
    "logged_params",
    "pipeline_run",
    "score",
    "train_and_register",
    "training_params",
    "training_run",
    "trusted_types",
]

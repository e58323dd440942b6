"""Train a scikit-learn model on a bundled dataset, track it in MLflow and register a version."""

from __future__ import annotations

import hashlib
import os
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from mlops_kit import display
from mlops_kit.errors import ParameterError, RegistryError, SchemaMismatch
from mlops_kit.settings import DATASETS, TrainingSettings
from mlops_kit.train.schema import schema_failure

if TYPE_CHECKING:
    import pandas as pd

    from mlops_kit.project import Project

PIPELINE_RUN_ENV = "MLOPS_KIT_PIPELINE_RUN_ID"
TAG_PREFIX = "mlops."
# Passing requirements skips MLflow's ~5 s subprocess that infers them.
PIP_REQUIREMENTS = ["scikit-learn", "pandas", "numpy"]


@dataclass(frozen=True)
class Dataset(display.Rich):
    """A deterministic train/test split of a bundled scikit-learn dataset."""

    name: str
    X_train: pd.DataFrame
    X_test: pd.DataFrame
    y_train: pd.Series
    y_test: pd.Series
    target_names: list[str]
    fingerprint: str

    def summary(self) -> dict[str, Any]:
        """Rows, features and classes, for display."""
        return {
            "dataset": self.name,
            "train_rows": len(self.X_train),
            "test_rows": len(self.X_test),
            "features": self.X_train.shape[1],
            "classes": len(self.target_names),
            "fingerprint": self.fingerprint[:12],
        }

    def _repr_html_(self) -> str:
        return display.fields(self.summary())

    def _figure_(self) -> display.Figure:
        s = self.summary()
        return display.Figure(
            "data",
            f"{s['dataset']}: {s['train_rows']} training / {s['test_rows']} held-out rows, "
            f"{s['features']} features, {s['classes']} classes",
        )


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

    An override of None means "as configured".
    """
    base = (defaults or TrainingSettings()).model_dump()
    overrides = {k: v for k, v in overrides.items() if v is not None}
    unknown = sorted(set(overrides) - set(base))
    if unknown:
        raise ParameterError(unknown[0], f"unknown training parameter; known: {', '.join(base)}")
    try:
        return TrainingSettings.model_validate({**base, **overrides})
    except ValidationError as exc:
        err = exc.errors()[0]
        name = ".".join(str(p) for p in err["loc"])
        raise ParameterError(name, f"{err['msg']} (got {err.get('input')!r})") from None


def load_dataset(name: str, test_size: float = 0.25, random_state: int = 42) -> Dataset:
    """Load a dataset shipped with scikit-learn and split it, stratified and reproducibly."""
    if name not in DATASETS:
        raise ParameterError("dataset", f"{name!r} is not one of {', '.join(DATASETS)}")
    from sklearn import datasets
    from sklearn.model_selection import train_test_split

    bunch = getattr(datasets, f"load_{name}")(as_frame=True)
    # Float columns keep one simple signature for every dataset (digits ships ints).
    X = bunch.data.astype("float64")
    y = bunch.target.astype("int64")
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=test_size, random_state=random_state, stratify=y
    )
    return Dataset(
        name=name,
        X_train=X_train,
        X_test=X_test,
        y_train=y_train,
        y_test=y_test,
        target_names=[str(t) for t in bunch.target_names],
        fingerprint=fingerprint(X, y),
    )


def fingerprint(X: pd.DataFrame, y: pd.Series) -> str:
    """sha256 over column names, values and labels: the same data gives the same digest."""
    import pandas as pd

    digest = hashlib.sha256()
    digest.update("\x1f".join(map(str, X.columns)).encode())
    digest.update(pd.util.hash_pandas_object(X, index=True).to_numpy().tobytes())
    digest.update(pd.util.hash_pandas_object(y, index=True).to_numpy().tobytes())
    return digest.hexdigest()


def build_estimator(params: TrainingSettings) -> Any:
    """The scikit-learn estimator the parameters describe."""
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if params.model_type == "random_forest":
        return RandomForestClassifier(
            n_estimators=params.n_estimators,
            max_depth=params.max_depth,
            random_state=params.random_state,
            n_jobs=1,
        )
    if params.model_type == "gradient_boosting":
        return GradientBoostingClassifier(
            n_estimators=params.n_estimators,
            max_depth=params.max_depth or 3,
            random_state=params.random_state,
        )
    return make_pipeline(
        StandardScaler(), LogisticRegression(max_iter=2000, random_state=params.random_state)
    )


def score(model: Any, X: pd.DataFrame, y: pd.Series) -> dict[str, float]:
    """Accuracy and macro-averaged F1, precision and recall of ``model`` on ``X``.

    SchemaMismatch when ``X`` does not fit the model's input schema (its message has the
    reason, not MLflow's quote of the data).
    """
    from sklearn import metrics

    try:
        pred = model.predict(X)
    except Exception as exc:
        reason = schema_failure(exc)
        if reason is None:
            raise
        raise SchemaMismatch(reason) from None
    return {
        "accuracy": float(metrics.accuracy_score(y, pred)),
        "f1_macro": float(metrics.f1_score(y, pred, average="macro")),
        "precision_macro": float(
            metrics.precision_score(y, pred, average="macro", zero_division=0)
        ),
        "recall_macro": float(metrics.recall_score(y, pred, average="macro", zero_division=0)),
    }


def trusted_types(estimator: Any) -> list[str]:
    """Types skops must be told to trust when loading ``estimator`` back.

    We trained the estimator in this process, so its own types are trusted; nothing else is.
    """
    from skops.io import dumps, get_untrusted_types

    return list(get_untrusted_types(data=dumps(estimator)))


def lineage(data: Dataset, pipeline_run_id: str | None = None) -> dict[str, str]:
    """Tags that let anyone trace a model version back to code, data and pipeline run."""
    from mlops_kit import __version__

    return {
        f"{TAG_PREFIX}git_commit": git_commit(Path.cwd()),
        f"{TAG_PREFIX}data_fingerprint": data.fingerprint,
        f"{TAG_PREFIX}dataset": data.name,
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


def train_and_register(
    project: Project, data: Dataset, params: TrainingSettings, *, pipeline_run_id: str | None = None
) -> TrainingResult:
    """Train, log params/metrics/model (with signature and input example) and register a version.

    The new version carries lineage tags: git commit, data fingerprint, pipeline run, toolkit
    version.
    """
    import mlflow
    from mlflow.models import infer_signature

    from mlops_kit.train.runs import fail_stale_runs, owner_tags

    client = project.client
    project.experiment_id()
    fail_stale_runs(project)
    estimator = build_estimator(params)
    tags = lineage(data, pipeline_run_id)
    # MLflow prints "Successfully registered model ..." and INFO lines: not for cell output.
    with (
        display.quiet(),
        mlflow.start_run(run_name=f"train-{data.name}-{params.model_type}") as run,
    ):
        mlflow.log_params(params.model_dump())
        mlflow.set_tags({**tags, **owner_tags()})
        estimator.fit(data.X_train, data.y_train)
        metrics = score(estimator, data.X_test, data.y_test)
        mlflow.log_metrics(metrics)
        signature = infer_signature(data.X_test, estimator.predict(data.X_test))
        try:
            info = mlflow.sklearn.log_model(
                estimator,
                name="model",
                signature=signature,
                input_example=data.X_test.head(3),
                pip_requirements=PIP_REQUIREMENTS,
                skops_trusted_types=trusted_types(estimator),
                registered_model_name=project.model_name,
            )
        except Exception as exc:
            raise RegistryError(f"could not log and register the model: {exc}") from exc
        version = str(info.registered_model_version)
    for key, value in tags.items():
        client.set_model_version_tag(project.model_name, version, key, value)
    client.set_model_version_tag(
        project.model_name, version, f"{TAG_PREFIX}run_id", run.info.run_id
    )
    return TrainingResult(
        model_name=project.model_name,
        version=version,
        run_id=run.info.run_id,
        model_uri=info.model_uri,
        metrics=metrics,
        params=params.model_dump(),
        lineage=tags,
    )

"""The built-in steps of the training pipeline, each a function ``step(context, **inputs)``.

    ingest ──table, inputs──▶ validate ──report
           └─table──▶ preprocess ──dataset──▶ train ──model──▶ evaluate ──metrics──▶ register

They are thin: the data is read, prepared and split by :mod:`mlops_kit.train.data`, the model
trained by the project's entrypoint (:func:`mlops_kit.train.training.fit`), scored by
:func:`mlops_kit.train.metrics.evaluate`, logged and registered by
:func:`mlops_kit.train.training.log_and_register`. What the steps add is the boundaries the
engine caches and retries at, the checks of ``validate``, and the snapshot ``register`` ties to
the new version. Every step gets the project and the training settings in its context
(``context.project``, ``context.training``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from mlops_kit.pipeline.store import sha256

if TYPE_CHECKING:
    import pandas as pd

    from mlops_kit.pipeline.engine import StepContext
    from mlops_kit.settings_training import DataSettings

TARGET = "target"
"""The label column of a bundled dataset's table."""


@dataclass(frozen=True)
class InputFile:
    """One file the data was read from: its name under the data path, sha256 and size."""

    name: str
    sha256: str
    size: int


def source_files(data: DataSettings) -> list[tuple[str, bytes]]:
    """``(name, bytes)`` of every file ``data.path`` names, the names relative to it."""
    from mlops_kit.train import data as training_data

    base = data.path.rstrip("/")
    files = []
    for found in training_data.source_files(data.path):
        if found.uri == base:  # the path names one file
            relative = Path(urlparse(found.uri).path).name
        else:
            relative = found.uri[len(base) :].lstrip("/")
        files.append((relative, found.read()))
    return files


def data_digest(data: DataSettings | None, dataset: str) -> str:
    """What ``ingest`` reads from outside, digested: the files' bytes, or the bundled set's name."""
    if data is None:
        import sklearn

        return f"sklearn-{sklearn.__version__}:{dataset}"
    return sha256("\n".join(f"{n} {sha256(b)}" for n, b in source_files(data)).encode())


def ingest(context: StepContext) -> dict[str, Any]:
    """Consolidate the sources into one table; store each input file for the snapshot.

    The team's files (``training.data``: a file, or a directory of CSV/Parquet files read as
    one table), else a dataset bundled with scikit-learn (its features and ``target``).
    """
    from mlops_kit.pipeline.store import ContentStore
    from mlops_kit.train import data as training_data

    settings = context.training
    store: ContentStore = context.store
    if settings.data is None:
        table = _bundled_table(settings.dataset, settings.test_size, settings.random_state)
        text = table.to_csv(index=False).encode()
        files = [(f"{settings.dataset}.csv", text)]
    else:
        files = source_files(settings.data)
        table = training_data.read_table(settings.data)
    inputs = [InputFile(name, store.put(raw), len(raw)) for name, raw in files]
    return {"table": table, "inputs": inputs}


def _bundled_table(name: str, test_size: float, random_state: int) -> pd.DataFrame:
    import pandas as pd

    from mlops_kit.train.data import load_dataset

    data = load_dataset(name, test_size, random_state)
    X = pd.concat([data.X_train, data.X_test]).sort_index()
    y = pd.concat([data.y_train, data.y_test]).sort_index()
    return X.assign(**{TARGET: y})


def validate(context: StepContext, table: pd.DataFrame) -> dict[str, Any]:
    """Check the table before anything trains on it (see :mod:`mlops_kit.pipeline.checks`)."""
    from mlops_kit.pipeline.checks import check_table

    settings = context.training
    target = settings.data.target if settings.data is not None else TARGET
    return {"report": check_table(table, target, context.project.settings.pipeline.expectations)}


def preprocess(context: StepContext, table: pd.DataFrame) -> dict[str, Any]:
    """The label and feature columns, the task, and the reproducible held-out split."""
    from mlops_kit.train import data as training_data

    settings = context.training
    source = settings.data
    target = source.target if source is not None else TARGET
    columns = source.columns if source is not None else None
    X, y, task = training_data.prepare(table, target, columns, settings.task)
    if source is None:
        bundled = training_data.load_dataset(settings.dataset, settings.test_size)
        names, where, labels = settings.dataset, "", bundled.target_names or None
    else:
        names, where, labels = training_data._source_name(source.path), source.path, None
    dataset = training_data.split(
        X, y, task, test_size=settings.test_size, random_state=settings.random_state,
        name=names, source=where, target_names=labels,
    )  # fmt: skip
    return {"dataset": dataset}


def train(context: StepContext, dataset: Any) -> dict[str, Any]:
    """Fit a model with the project's entrypoint (``training.entrypoint``)."""
    from mlops_kit.train.training import fit

    context.project.settings.gates.rule(dataset.task)  # a metric of another task: stop now
    return {"model": fit(context.project, dataset, context.training)}


def evaluate(context: StepContext, model: Any, dataset: Any) -> dict[str, Any]:
    """The held-out metrics of the data's task, and the entrypoint's own."""
    from mlops_kit.train.metrics import evaluate as held_out

    return {"metrics": {**held_out(model, dataset), **model.extra_metrics}}


def register(
    context: StepContext, model: Any, dataset: Any, metrics: dict[str, float], inputs: list[Any]
) -> dict[str, Any]:
    """Log the run and the model, register a version, and snapshot what made it.

    The snapshot (the input files and every step output so far) is tied to the version by the
    ``mlops.snapshot`` tag and logged as the run's MLflow dataset input.
    """
    from mlops_kit.pipeline import snapshots
    from mlops_kit.train.training import log_and_register, training_run

    project, settings = context.project, context.training
    with training_run(project, dataset, settings, context.run_id) as run:
        snapshots.log_input(dataset, inputs)
        result = log_and_register(project, dataset, settings, model, run)
    snapshots.create(project, context.store, result, settings, inputs, dict(context.outputs))
    return {"registration": result}

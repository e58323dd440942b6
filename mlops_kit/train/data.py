"""Training data: a table read from the team's files (or a bundled set), checked, split.

The building blocks, each usable as a pipeline step: :func:`read_table` reads CSV or Parquet
files (a file or a directory, local or ``s3://``) into one DataFrame; :func:`prepare` picks the
label and feature columns and settles the task (declared or inferred, and checked);
:func:`split` holds out the evaluation rows reproducibly; :func:`fingerprint` digests the data
so that the same data is recognised. :func:`load_data` composes them as the project's
``training:`` section says; :func:`load_dataset` loads a set bundled with scikit-learn.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from mlops_kit import display
from mlops_kit.errors import DataError, MissingDependencyError, ParameterError
from mlops_kit.settings_training import DATASETS, TASKS

if TYPE_CHECKING:
    import pandas as pd

    from mlops_kit.settings_training import DataSettings, TrainingSettings

SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
"""File suffixes read, and their format."""
MAX_CLASSES = 20
"""A target of whole numbers with at most this many distinct values is inferred as classes."""


@dataclass(frozen=True)
class Dataset(display.Rich):
    """A deterministic train/test split: what an entrypoint trains on and the gate scores on.

    ``X_*`` are the feature columns (numeric ones as float64), ``y_*`` the target; ``task`` is
    ``classification`` or ``regression``.
    """

    name: str
    X_train: pd.DataFrame
    X_test: pd.DataFrame
    y_train: pd.Series
    y_test: pd.Series
    target_names: list[str]
    """The class labels, as text (empty for regression)."""
    fingerprint: str
    """sha256 of the columns, features and target (:func:`fingerprint`)."""
    task: str = "classification"
    target: str = "target"
    """The label column's name."""
    source: str = ""
    """Where the rows came from: ``sklearn:<name>``, a path or an ``s3://`` URI."""

    @property
    def feature_names(self) -> list[str]:
        """The input columns, in the order the model receives them."""
        return [str(c) for c in self.X_train.columns]

    def summary(self) -> dict[str, Any]:
        """Rows, features, task and classes, for display."""
        return {
            "dataset": self.name,
            "task": self.task,
            "train_rows": len(self.X_train),
            "test_rows": len(self.X_test),
            "features": self.X_train.shape[1],
            "classes": len(self.target_names) if self.task == "classification" else "–",
            "target": self.target,
            "fingerprint": self.fingerprint[:12],
        }

    def _repr_html_(self) -> str:
        return display.fields(self.summary())

    def _figure_(self) -> display.Figure:
        s = self.summary()
        if self.task == "classification":
            kind = f"{s['classes']} classes"
        else:
            kind = f"regression of {self.target}"
        return display.Figure(
            "data",
            f"{s['dataset']}: {s['train_rows']} training / {s['test_rows']} held-out rows, "
            f"{s['features']} features, {kind}",
        )


def load_data(settings: TrainingSettings) -> Dataset:
    """The split the ``training:`` settings describe: their ``data`` files, else the bundled
    ``dataset``. DataError names what does not fit (a missing column, a wrong task)."""
    source = settings.data
    if source is None:
        data = load_dataset(settings.dataset, settings.test_size, settings.random_state)
        if settings.task is not None and settings.task != data.task:
            raise DataError(
                f"training.task is {settings.task}, but the bundled dataset {data.name!r} is a "
                f"{data.task} set"
            )
        return data
    table = read_table(source)
    X, y, task = prepare(table, source.target, source.columns, settings.task)
    return split(
        X,
        y,
        task,
        test_size=settings.test_size,
        random_state=settings.random_state,
        name=_source_name(source.path),
        source=source.path,
    )


def load_dataset(name: str, test_size: float = 0.25, random_state: int = 42) -> Dataset:
    """Load a dataset shipped with scikit-learn and split it reproducibly (stratified for
    classes)."""
    if name not in DATASETS:
        raise ParameterError("dataset", f"{name!r} is not one of {', '.join(DATASETS)}")
    from sklearn import datasets

    bunch = getattr(datasets, f"load_{name}")(as_frame=True)
    task = "regression" if name == "diabetes" else "classification"
    # Float columns keep one simple signature for every dataset (digits ships ints).
    X = bunch.data.astype("float64")
    y = bunch.target.astype("int64" if task == "classification" else "float64")
    labels = [str(t) for t in getattr(bunch, "target_names", [])] or None
    return split(
        X, y, task, test_size=test_size, random_state=random_state, name=name, target_names=labels
    )


@dataclass(frozen=True)
class SourceFile:
    """One file of a data source: where it is, its format and how to read its bytes."""

    uri: str
    """A local path or an ``s3://`` URI."""
    format: str
    """``csv`` or ``parquet``, from the suffix."""
    read: Callable[[], bytes]
    """Its bytes, as stored (OSError when they cannot be read)."""


def source_files(path: str) -> list[SourceFile]:
    """The files a data path names: the file itself, or every ``.csv``/``.parquet`` file under
    a directory or ``s3://`` prefix, in name order (names starting with ``.`` or ``_`` skipped).
    DataError when there is none."""
    return _s3_files(path) if urlparse(path).scheme == "s3" else _local_files(Path(path))


def read_table(source: DataSettings) -> pd.DataFrame:
    """Every CSV or Parquet file ``source.path`` names (a file, or a directory read in name
    order) as one table. Files of a directory must have the same columns."""
    import pandas as pd

    path = source.path
    files = source_files(path)
    frames: list[pd.DataFrame] = []
    for name, fmt, read in ((f.uri, f.format, f.read) for f in files):
        fmt = source.format or fmt
        try:
            raw = read()
            frame = (
                pd.read_csv(io.BytesIO(raw)) if fmt == "csv" else pd.read_parquet(io.BytesIO(raw))
            )
        except (OSError, ValueError, ImportError) as exc:
            raise DataError(f"cannot read {name} as {fmt}: {exc}") from None
        if frames and list(frame.columns) != list(frames[0].columns):
            raise DataError(
                f"{name} has columns {list(frame.columns)}, {files[0].uri} has "
                f"{list(frames[0].columns)}: every file of a directory has the same columns"
            )
        frames.append(frame)
    table = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    if table.empty:
        raise DataError(f"{path} has no rows")
    return table


def prepare(
    table: pd.DataFrame, target: str, columns: list[str] | None = None, task: str | None = None
) -> tuple[pd.DataFrame, pd.Series, str]:
    """The feature columns, the label column and the task of ``table``.

    ``columns`` selects the features (default: all but ``target``); numeric features become
    float64, as the bundled sets are. ``task`` None is inferred (:func:`infer_task`); a
    declared one is checked. DataError names a missing column or a label that does not fit.
    """
    from pandas.api.types import is_numeric_dtype

    known = [str(c) for c in table.columns]
    if target not in table.columns:
        raise DataError(f"the target column {target!r} is not in the data; its columns: {known}")
    if columns is not None:
        missing = [c for c in columns if c not in table.columns]
        if missing:
            raise DataError(f"training.data.columns names {missing}, not in the data: {known}")
        if target in columns:
            raise DataError(f"training.data.columns lists the target column {target!r}")
    features = table[columns] if columns is not None else table.drop(columns=[target])
    if features.columns.empty:
        raise DataError(f"the data has no feature column besides the target {target!r}")
    numeric = [c for c in features.columns if is_numeric_dtype(features[c])]
    X = features.astype(dict.fromkeys(numeric, "float64"))
    y = table[target]
    if y.isna().any():
        raise DataError(f"the target column {target!r} has {int(y.isna().sum())} missing values")
    task = check_task(y, task, target)
    if task == "regression":
        y = y.astype("float64")
    elif is_numeric_dtype(y) and y.dtype != bool and (y % 1 == 0).all():
        y = y.astype("int64")
    return X, y.rename(target), task


def infer_task(y: pd.Series) -> str:
    """``classification`` for text, booleans or at most :data:`MAX_CLASSES` distinct whole
    numbers; ``regression`` otherwise."""
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    if is_bool_dtype(y) or not is_numeric_dtype(y):
        return "classification"
    if (y % 1 != 0).any():
        return "regression"
    return "classification" if y.nunique() <= MAX_CLASSES else "regression"


def check_task(y: pd.Series, task: str | None, target: str = "target") -> str:
    """``task``, or the inferred one; DataError when the label cannot be of the declared task."""
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    if task is None:
        return infer_task(y)
    if task not in TASKS:
        raise DataError(f"unknown task {task!r}; one of {', '.join(TASKS)}")
    numeric = is_numeric_dtype(y) and not is_bool_dtype(y)
    if task == "regression" and not numeric:
        raise DataError(
            f"training.task is regression, but the target column {target!r} is not numeric "
            f"({y.dtype}); declare task: classification"
        )
    if task == "classification" and numeric and (y % 1 != 0).any():
        sample = y[y % 1 != 0].iloc[0]
        raise DataError(
            f"training.task is classification, but the target column {target!r} holds "
            f"continuous values (e.g. {sample!r}); declare task: regression"
        )
    return task


def split(
    X: pd.DataFrame,
    y: pd.Series,
    task: str,
    *,
    test_size: float = 0.25,
    random_state: int = 42,
    name: str = "data",
    source: str = "",
    target_names: list[str] | None = None,
) -> Dataset:
    """Hold out ``test_size`` of the rows with a fixed seed (stratified by class when every
    class has two rows or more): the same data and seed give the same split."""
    from sklearn.model_selection import train_test_split

    stratify = y if task == "classification" and y.value_counts().min() >= 2 else None
    try:
        X_train, X_test, y_train, y_test = train_test_split(
            X, y, test_size=test_size, random_state=random_state, stratify=stratify
        )
    except ValueError as exc:
        raise DataError(f"cannot hold out {test_size:.0%} of {len(X)} rows: {exc}") from None
    labels: list[str] = []
    if task == "classification":
        labels = target_names or sorted(str(v) for v in y.unique())
    return Dataset(
        name=name,
        X_train=X_train,
        X_test=X_test,
        y_train=y_train,
        y_test=y_test,
        target_names=labels,
        fingerprint=fingerprint(X, y),
        task=task,
        target=str(y.name) if y.name is not None else "target",
        source=source or f"sklearn:{name}",
    )


def fingerprint(X: pd.DataFrame, y: pd.Series) -> str:
    """sha256 over column names, values and labels: the same data gives the same digest."""
    import pandas as pd

    digest = hashlib.sha256()
    digest.update("\x1f".join(map(str, X.columns)).encode())
    digest.update(pd.util.hash_pandas_object(X, index=True).to_numpy().tobytes())
    digest.update(pd.util.hash_pandas_object(y, index=True).to_numpy().tobytes())
    return digest.hexdigest()


def _local_files(path: Path) -> list[SourceFile]:
    if path.is_file():
        return [SourceFile(str(path), SUFFIXES.get(path.suffix.lower(), "csv"), path.read_bytes)]
    if not path.is_dir():
        raise DataError(f"training.data.path: {path} does not exist")
    files = sorted(
        p
        for p in path.rglob("*")
        if p.is_file() and p.suffix.lower() in SUFFIXES and not p.name.startswith((".", "_"))
    )
    if not files:
        raise DataError(f"training.data.path: {path} holds no .csv or .parquet file")
    return [SourceFile(str(p), SUFFIXES[p.suffix.lower()], p.read_bytes) for p in files]


def _s3_files(uri: str) -> list[SourceFile]:
    """The objects ``uri`` names: one key, or every .csv/.parquet key under a prefix."""
    try:
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:
        raise MissingDependencyError("boto3", "s3") from None
    parsed = urlparse(uri)
    bucket, key = parsed.netloc, parsed.path.lstrip("/")
    s3 = boto3.client("s3")

    def reader(name: str) -> Callable[[], bytes]:
        def read() -> bytes:
            try:
                return bytes(s3.get_object(Bucket=bucket, Key=name)["Body"].read())
            except (BotoCoreError, ClientError) as exc:
                raise OSError(str(exc)) from None

        return read

    if Path(key).suffix.lower() in SUFFIXES:
        return [SourceFile(uri, SUFFIXES[Path(key).suffix.lower()], reader(key))]
    prefix = key.rstrip("/") + "/" if key else ""
    try:
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        keys = sorted(o["Key"] for page in pages for o in page.get("Contents", []))
    except (BotoCoreError, ClientError) as exc:
        raise DataError(f"training.data.path: cannot list {uri}: {exc}") from None
    keys = [
        k
        for k in keys
        if Path(k).suffix.lower() in SUFFIXES and not Path(k).name.startswith((".", "_"))
    ]
    if not keys:
        raise DataError(f"training.data.path: {uri} holds no .csv or .parquet object")
    return [
        SourceFile(f"s3://{bucket}/{k}", SUFFIXES[Path(k).suffix.lower()], reader(k)) for k in keys
    ]


def _source_name(path: str) -> str:
    name = Path(urlparse(path).path.rstrip("/")).name
    for suffix in SUFFIXES:
        name = name.removesuffix(suffix)
    return name or "data"


__all__ = [
    "Dataset",
    "SourceFile",
    "check_task",
    "fingerprint",
    "infer_task",
    "load_data",
    "load_dataset",
    "prepare",
    "read_table",
    "source_files",
    "split",
]

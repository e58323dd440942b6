"""A training job's data: the files of its channels, read as the toolkit's :class:`Dataset`.

The ``train`` channel holds CSV files (with a header row) or Parquet files, all with the same
columns, one of them the label (the ``target`` hyperparameter). An optional ``validation``
channel of the same shape is the held-out data the metrics are computed on; without one, the
``train`` data is split as the toolkit splits a bundled dataset (stratified, ``test_size``,
``random_state``). :func:`write_channels` lays out a :class:`Dataset` the same way, so a
SageMaker job trains on exactly the rows a local run would.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from mlops_kit.errors import ConfigError, DataError, ParameterError
from mlops_kit.train.training import Dataset, fingerprint

if TYPE_CHECKING:
    import pandas as pd

    from mlops_kit.settings import TrainingSettings
    from mlops_kit.targets.sagemaker.byo.contract import Layout

TRAIN = "train"
"""The channel of training data (required)."""
VALIDATION = "validation"
"""The channel of held-out data (optional)."""
SUFFIXES = (".csv", ".parquet", ".pq")


def read_channel(directory: Path) -> pd.DataFrame:
    """Every CSV and Parquet file under ``directory``, in name order, as one table (the way
    :func:`mlops_kit.train.data.read_table` reads a directory of training data)."""
    from mlops_kit.settings_training import DataSettings
    from mlops_kit.train.data import read_table

    if not directory.is_dir():
        raise ConfigError(f"channel {directory.name!r} has no directory {directory}")
    try:
        return read_table(DataSettings(path=str(directory)))
    except DataError as exc:
        raise ConfigError(f"channel {directory.name!r}: {exc}") from None


def features_and_labels(table: pd.DataFrame, target: str) -> tuple[pd.DataFrame, pd.Series]:
    """The feature columns (as float64, as the toolkit trains) and the label column."""
    if target not in table.columns:
        raise ParameterError(
            "target", f"column {target!r} is not in the data; its columns: {list(table.columns)}"
        )
    features = table.drop(columns=[target])
    if features.columns.empty:
        raise ConfigError(f"the data has no feature column besides the label {target!r}")
    try:
        X = features.astype("float64")
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"every feature column must be numeric: {exc}") from None
    y = table[target]
    if y.isna().any():
        raise ConfigError(f"the label column {target!r} has missing values")
    return X, y


def load(layout: Layout, target: str, params: TrainingSettings) -> Dataset:
    """The :class:`Dataset` of a job's ``train`` (and ``validation``) channels."""
    X, y = features_and_labels(read_channel(layout.channel(TRAIN)), target)
    validation = layout.channel(VALIDATION)
    if validation.is_dir():
        X_test, y_test = features_and_labels(read_channel(validation), target)
        if list(X_test.columns) != list(X.columns):
            raise ConfigError(
                f"the validation channel's features {list(X_test.columns)} are not the train "
                f"channel's {list(X.columns)}"
            )
        X_train, y_train = X, y
    else:
        from sklearn.model_selection import train_test_split

        try:
            X_train, X_test, y_train, y_test = train_test_split(
                X, y, test_size=params.test_size, random_state=params.random_state, stratify=y
            )
        except ValueError as exc:
            raise ConfigError(
                f"cannot hold out {params.test_size:.0%} of the rows: {exc}"
            ) from None
    return Dataset(
        name=TRAIN,
        X_train=X_train,
        X_test=X_test,
        y_train=y_train,
        y_test=y_test,
        target_names=sorted(str(label) for label in y.unique()),
        fingerprint=fingerprint(X, y),
    )


def write_channels(data: Dataset, directory: str | Path, target: str = "target") -> dict[str, Path]:
    """Write ``data`` as a job's channels: ``train/train.csv`` and ``validation/validation.csv``.

    Returns each channel's directory by name, ready to upload as its S3 prefix.
    """
    if target in data.X_train.columns:
        raise ParameterError("target", f"{target!r} is already a feature column's name")
    root = Path(directory)
    written: dict[str, Path] = {}
    for channel, X, y in (
        (TRAIN, data.X_train, data.y_train),
        (VALIDATION, data.X_test, data.y_test),
    ):
        path = root / channel
        path.mkdir(parents=True, exist_ok=True)
        X.assign(**{target: y.to_numpy()}).to_csv(path / f"{channel}.csv", index=False)
        written[channel] = path
    return written


__all__ = [
    "SUFFIXES",
    "TRAIN",
    "VALIDATION",
    "features_and_labels",
    "load",
    "read_channel",
    "write_channels",
]

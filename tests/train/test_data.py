"""Your own data: CSV and Parquet files and directories, local and on S3, checked and split."""

import pytest

from mlops_kit.errors import ConfigError, DataError
from mlops_kit.settings_training import DataSettings, TrainingSettings
from mlops_kit.train import data as training_data
from tests.support import write_project


@pytest.fixture
def diabetes_frame():
    from sklearn.datasets import load_diabetes

    bunch = load_diabetes(as_frame=True)
    return bunch.data.assign(target=bunch.target)


def settings_for(path, **data):
    return TrainingSettings(data=DataSettings(path=str(path), **data))


def test_a_csv_file_is_a_regression_dataset(tmp_path, diabetes_frame):
    diabetes_frame.to_csv(tmp_path / "diabetes.csv", index=False)
    data = training_data.load_data(settings_for(tmp_path / "diabetes.csv"))
    assert (data.task, data.name, data.target) == ("regression", "diabetes", "target")
    assert data.feature_names == [c for c in diabetes_frame.columns if c != "target"]
    assert len(data.X_train) + len(data.X_test) == len(diabetes_frame)
    assert data.y_train.dtype == "float64" and data.target_names == []
    again = training_data.load_data(settings_for(tmp_path / "diabetes.csv"))
    assert again.fingerprint == data.fingerprint
    assert data.X_test.index.equals(again.X_test.index)


def test_a_parquet_file_and_a_directory_of_parts_give_the_same_rows(tmp_path, diabetes_frame):
    diabetes_frame.to_parquet(tmp_path / "all.parquet", index=False)
    parts = tmp_path / "parts"
    parts.mkdir()
    diabetes_frame.iloc[:200].to_parquet(parts / "part-0.parquet", index=False)
    diabetes_frame.iloc[200:].to_parquet(parts / "part-1.parquet", index=False)
    (parts / "_SUCCESS").write_text("")  # markers that writers leave are not data
    whole = training_data.read_table(DataSettings(path=str(tmp_path / "all.parquet")))
    split = training_data.read_table(DataSettings(path=str(parts)))
    assert split.equals(whole)
    assert training_data.load_data(settings_for(parts)).name == "parts"
    files = training_data.source_files(str(parts))
    assert [(f.uri, f.format) for f in files] == [
        (str(parts / "part-0.parquet"), "parquet"),
        (str(parts / "part-1.parquet"), "parquet"),
    ]
    assert files[1].read() == (parts / "part-1.parquet").read_bytes()


def test_files_of_a_directory_must_share_their_columns(tmp_path, diabetes_frame):
    diabetes_frame.iloc[:10].to_csv(tmp_path / "a.csv", index=False)
    diabetes_frame.iloc[10:20, 1:].to_csv(tmp_path / "b.csv", index=False)
    with pytest.raises(DataError, match="b.csv has columns"):
        training_data.read_table(DataSettings(path=str(tmp_path)))


def test_columns_select_the_features_in_their_order(tmp_path, diabetes_frame):
    diabetes_frame.to_csv(tmp_path / "d.csv", index=False)
    data = training_data.load_data(settings_for(tmp_path / "d.csv", columns=["bmi", "age"]))
    assert data.feature_names == ["bmi", "age"]
    with pytest.raises(DataError, match=r"\['nope'\], not in the data"):
        training_data.load_data(settings_for(tmp_path / "d.csv", columns=["bmi", "nope"]))


def test_a_missing_target_column_is_named(tmp_path, diabetes_frame):
    diabetes_frame.to_csv(tmp_path / "d.csv", index=False)
    with pytest.raises(DataError, match="the target column 'progression' is not in the data"):
        training_data.load_data(settings_for(tmp_path / "d.csv", target="progression"))


def test_a_missing_file_and_missing_labels_are_data_errors(tmp_path, diabetes_frame):
    with pytest.raises(DataError, match="does not exist"):
        training_data.load_data(settings_for(tmp_path / "none.csv"))
    diabetes_frame.loc[3, "target"] = None
    diabetes_frame.to_csv(tmp_path / "d.csv", index=False)
    with pytest.raises(DataError, match="'target' has 1 missing values"):
        training_data.load_data(settings_for(tmp_path / "d.csv"))


def test_the_task_is_inferred_and_a_declared_task_is_checked(tmp_path, diabetes_frame):
    import pandas as pd

    assert training_data.infer_task(pd.Series(["a", "b", "a"])) == "classification"
    assert training_data.infer_task(pd.Series([0, 1, 2, 1])) == "classification"
    assert training_data.infer_task(pd.Series([0.5, 1.5])) == "regression"
    assert training_data.infer_task(pd.Series(range(100))) == "regression"
    diabetes_frame.assign(target=diabetes_frame.target / 3).to_csv(tmp_path / "d.csv", index=False)
    source = DataSettings(path=str(tmp_path / "d.csv"))
    with pytest.raises(DataError, match="task is classification.*continuous values"):
        training_data.load_data(TrainingSettings(data=source, task="classification"))
    labels = diabetes_frame.assign(target=["low", "high"] * (len(diabetes_frame) // 2))
    labels.to_csv(tmp_path / "labels.csv", index=False)
    text = DataSettings(path=str(tmp_path / "labels.csv"))
    with pytest.raises(DataError, match="task is regression.*not numeric"):
        training_data.load_data(TrainingSettings(data=text, task="regression"))
    classes = training_data.load_data(TrainingSettings(data=text))
    assert classes.task == "classification" and classes.target_names == ["high", "low"]
    with pytest.raises(DataError, match="'wine' is a classification set"):
        training_data.load_data(TrainingSettings(dataset="wine", task="regression"))


def test_the_bundled_regression_set(tmp_path):
    data = training_data.load_dataset("diabetes")
    assert data.task == "regression" and data.source == "sklearn:diabetes"
    assert training_data.load_dataset("wine").target_names == ["class_0", "class_1", "class_2"]


def test_a_relative_path_in_the_project_file_is_relative_to_it(tmp_path, diabetes_frame):
    from mlops_kit.settings import load_settings

    (tmp_path / "data").mkdir()
    diabetes_frame.to_csv(tmp_path / "data" / "d.csv", index=False)
    path = write_project(tmp_path, training={"data": {"path": "data/d.csv"}})
    settings = load_settings(path).training
    assert settings.data.path == str(tmp_path / "data" / "d.csv")
    assert training_data.load_data(settings).task == "regression"


def test_a_gate_metric_of_another_task_is_a_config_error(tmp_path):
    from mlops_kit.settings import load_settings

    path = write_project(tmp_path, training={"dataset": "diabetes"}, gates={"metric": "accuracy"})
    with pytest.raises(ConfigError, match="'accuracy' is a classification metric.*r2, rmse, mae"):
        load_settings(path)
    path = write_project(tmp_path, gates={"metric": "rmse", "min_value": 0.5})
    with pytest.raises(ConfigError, match="min_value is a floor.*set threshold"):
        load_settings(path)


def test_a_csv_and_a_prefix_of_parquet_parts_on_s3(aws, diabetes_frame, tmp_path):
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="team-data")
    s3.put_object(
        Bucket="team-data", Key="diabetes.csv", Body=diabetes_frame.to_csv(index=False).encode()
    )
    for i, rows in enumerate((diabetes_frame.iloc[:300], diabetes_frame.iloc[300:])):
        rows.to_parquet(tmp_path / f"{i}.parquet", index=False)
        s3.put_object(
            Bucket="team-data",
            Key=f"parts/{i}.parquet",
            Body=(tmp_path / f"{i}.parquet").read_bytes(),
        )
    from_csv = training_data.load_data(settings_for("s3://team-data/diabetes.csv"))
    from_parts = training_data.load_data(settings_for("s3://team-data/parts/"))
    diabetes_frame.to_csv(tmp_path / "d.csv", index=False)
    local = training_data.load_data(settings_for(tmp_path / "d.csv"))
    assert from_csv.fingerprint == local.fingerprint
    assert (from_csv.source, from_csv.task) == ("s3://team-data/diabetes.csv", "regression")
    assert len(from_parts.X_train) + len(from_parts.X_test) == len(diabetes_frame)
    with pytest.raises(DataError, match="s3://team-data/missing.csv"):
        training_data.load_data(settings_for("s3://team-data/missing.csv"))

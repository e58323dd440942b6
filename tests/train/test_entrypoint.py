"""Your own training code: entrypoints resolved from the project, called, checked, registered."""

import sys
import textwrap

import pytest

from mlops_kit.errors import EntrypointError, EntrypointNotFound
from mlops_kit.settings import GateSettings
from mlops_kit.train import entrypoint, gates
from mlops_kit.train.training import load_dataset, train_and_register, training_params


@pytest.fixture
def user_code(tmp_path):
    """Write a module into the project's directory; forget it (and the path) afterwards."""
    written = []

    def write(name: str, source: str) -> str:
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
        written.append(name)
        return name

    path = list(sys.path)
    yield write
    sys.path[:] = path
    for name in written:
        sys.modules.pop(name, None)


@pytest.fixture
def diabetes():
    return load_dataset("diabetes")


RIDGE = """
    from sklearn.linear_model import Ridge

    def train(data, params):
        model = Ridge(alpha=params.get("alpha", 1.0)).fit(data.X_train, data.y_train)
        return model, {"train_rows": len(data.X_train)}
"""


def test_a_user_function_is_found_beside_the_project_file_and_called(tmp_path, user_code, diabetes):
    user_code("ridge_model", RIDGE)
    fitted = entrypoint.run("ridge_model:train", diabetes, {"alpha": 0.5}, tmp_path)
    assert fitted.flavour == "sklearn" and fitted.model.alpha == 0.5
    assert fitted.extra_metrics == {"train_rows": float(len(diabetes.X_train))}
    assert fitted.code_paths == [str(tmp_path / "ridge_model.py")]
    assert fitted.predict(diabetes.X_test).shape == (len(diabetes.X_test),)


@pytest.mark.parametrize(
    ("source", "spec", "error", "message"),
    [
        ("", "no_such_module:train", EntrypointNotFound, "cannot be imported: No module named"),
        ("import nope_missing\n", "broken_import:train", EntrypointNotFound,
         "failed while importing broken_import: ModuleNotFoundError"),
        ("x = 1\n", "no_function:train", EntrypointNotFound, "module no_function has no 'train'"),
        ("train = 3\n", "not_callable:train", EntrypointNotFound, "is not a function but a int"),
        ("def train(data, params):\n    raise ValueError('bad alpha')\n", "raising:train",
         EntrypointError, "raised ValueError: bad alpha"),
        ("def train(data, params):\n    return None\n", "returns_none:train", EntrypointError,
         "returned None"),
        ("def train(data, params):\n    return 'model'\n", "returns_text:train", EntrypointError,
         "returned a str, which is not a model mlops-kit can log"),
        ("from sklearn.linear_model import Ridge\ndef train(data, params):\n    return Ridge()\n",
         "unfitted:train", EntrypointError, "returned an unfitted .*Ridge: call fit"),
        ("def train(data, params):\n    return 1, 2, 3\n", "triple:train", EntrypointError,
         "returned a tuple of 3 items"),
        ("from sklearn.dummy import DummyRegressor as D\ndef train(data, params):\n"
         "    return D().fit(data.X_train, data.y_train), {'rmse': 1.0}\n", "clash:train",
         EntrypointError, "metric 'rmse', which the toolkit computes"),
        ("from sklearn.dummy import DummyRegressor as D\ndef train(data, params):\n"
         "    return D().fit(data.X_train, data.y_train), {'cv': 'high'}\n", "text_metric:train",
         EntrypointError, "metric 'cv' = 'high', which is not a number"),
    ],
)  # fmt: skip
def test_what_goes_wrong_names_the_entrypoint(
    tmp_path, user_code, diabetes, source, spec, error, message
):
    if source:
        user_code(spec.partition(":")[0], source)
    with pytest.raises(error, match=message) as caught:
        entrypoint.run(spec, diabetes, {}, tmp_path)
    assert str(caught.value).startswith(f"training entrypoint {spec!r} ")
    assert "\n" not in str(caught.value)
    assert caught.value.exit_code == (2 if error is EntrypointNotFound else 1)


def test_the_built_in_entrypoint_trains_regressors_and_refuses_a_classifier_for_them(diabetes):
    from mlops_kit.errors import ParameterError

    for model_type in ("random_forest", "gradient_boosting", "ridge"):
        params = {"model_type": model_type, "n_estimators": 5, "random_state": 1}
        fitted = entrypoint.run("mlops_kit.train.builtin:fit", diabetes, params)
        assert fitted.code_paths == []
        assert fitted.predict(diabetes.X_test).dtype.kind == "f"
    with pytest.raises(ParameterError, match="'logistic_regression' is not a built-in regression"):
        entrypoint.run(
            "mlops_kit.train.builtin:fit", diabetes, {"model_type": "logistic_regression"}
        )
    with pytest.raises(ParameterError):
        training_params(model_type="linear")


def test_a_pyfunc_python_model_is_registered_served_by_mlflow_and_gated(
    tmp_path, user_code, project, diabetes
):
    import mlflow.pyfunc

    from mlops_kit.registry.client import Registry

    user_code(
        "mean_model",
        """
        import mlflow.pyfunc
        import numpy as np

        class Mean(mlflow.pyfunc.PythonModel):
            def __init__(self, value):
                self.value = value

            def predict(self, context, model_input, params=None):
                return np.full(len(model_input), self.value)

        def train(data, params):
            return Mean(float(data.y_train.mean()) + params["shift"])
        """,
    )
    project.settings.gates = GateSettings(metric="rmse", threshold=100.0, max_regression=1.0)
    settings = training_params(
        project.settings.training,
        dataset="diabetes",
        entrypoint="mean_model:train",
        params="{shift: 1.5}",
    )
    result = train_and_register(project, diabetes, settings)
    assert set(result.metrics) == {"r2", "rmse", "mae"}
    run = project.client.get_run(result.run_id)
    assert run.data.params["shift"] == "1.5" and run.data.params["entrypoint"] == "mean_model:train"
    version = Registry(project).get(result.version)
    assert version.tags["mlops.entrypoint"] == "mean_model:train"
    assert version.tags["mlops.task"] == "regression"
    sys.modules.pop("mean_model")  # the registered model carries its code
    sys.path.remove(str(tmp_path))
    model = mlflow.pyfunc.load_model(f"models:/{project.model_name}/{result.version}")
    expected = float(diabetes.y_train.mean()) + 1.5
    assert model.predict(diabetes.X_test.head(2)).tolist() == [expected, expected]
    verdict = gates.evaluate_gate(project, result.version, diabetes)
    assert verdict.passed and (verdict.metric, verdict.direction) == ("rmse", "lower")
    assert verdict.challenger_value == pytest.approx(result.metrics["rmse"])


def test_a_gate_metric_of_another_task_stops_before_training(project, diabetes):
    from mlops_kit.errors import ConfigError

    project.settings.gates = GateSettings(metric="accuracy")
    with pytest.raises(ConfigError, match="'accuracy' is a classification metric.*regression"):
        train_and_register(project, diabetes, training_params(dataset="diabetes"))
    assert project.client.search_model_versions(f"name='{project.model_name}'") == []


def test_lower_is_better_rules():
    rmse = GateSettings(metric="rmse", threshold=60.0, max_regression=2.0)
    assert gates.decide(rmse, ("2", 55.0), None).passed
    assert gates.decide(rmse, ("2", 57.0), ("1", 55.5)).passed
    high = gates.decide(rmse, ("2", 61.0), None)
    assert not high.passed and "rmse 61.0000 is above the ceiling 60.0000" in high.reasons[0]
    worse = gates.decide(rmse, ("2", 58.0), ("1", 55.0))
    assert not worse.passed and "regressed by 3.0000" in worse.summary()
    assert gates.decide(GateSettings(metric="mae"), ("2", 1e9), None).passed  # no bound set
    r2 = GateSettings(metric="r2", threshold=0.4)
    assert not gates.decide(r2, ("2", 0.35), None).passed
    assert gates.decide(GateSettings(metric="r2", direction="lower", threshold=0.5), ("2", 0.4),
                        None).passed  # fmt: skip
    assert not gates.decide(rmse, ("2", float("nan")), None).passed


def test_parameters_merge_over_the_configured_ones():
    from mlops_kit.errors import ParameterError
    from mlops_kit.settings_training import DataSettings, TrainingSettings

    configured = TrainingSettings(
        data=DataSettings(path="/data/d.csv"), entrypoint="m:train", params={"alpha": 1, "k": 2}
    )
    merged = training_params(configured, params="{alpha: 0.5}")
    assert merged.params == {"alpha": 0.5, "k": 2}
    assert merged.entrypoint_params() == {"random_state": 42, "alpha": 0.5, "k": 2}
    assert training_params(configured, params={"k": 3}).params == {"alpha": 1, "k": 3}
    assert training_params(configured).data.path == "/data/d.csv"
    assert training_params(configured, dataset="iris").data is None  # a bundled set instead
    builtin = training_params(n_estimators=7).entrypoint_params()
    assert builtin == {"random_state": 42, "model_type": "random_forest", "n_estimators": 7,
                       "max_depth": None}  # fmt: skip
    with pytest.raises(ParameterError, match="'params': must be a mapping"):
        training_params(configured, params="[1, 2]")
    with pytest.raises(ParameterError, match="'entrypoint'"):
        training_params(entrypoint="not an entrypoint")


def test_a_pipeline_with_the_teams_own_transformer_loads_where_their_code_is_not_installed(
    tmp_path, user_code, project, diabetes
):
    import mlflow.pyfunc

    user_code(
        "team_features",
        """
        from sklearn.base import BaseEstimator, TransformerMixin
        from sklearn.linear_model import Ridge
        from sklearn.pipeline import make_pipeline

        class Squares(TransformerMixin, BaseEstimator):
            def fit(self, X, y=None):
                return self

            def transform(self, X):
                return X.assign(**{f"{c}_sq": X[c] ** 2 for c in X.columns})

        def train(data, params):
            return make_pipeline(Squares(), Ridge()).fit(data.X_train, data.y_train)
        """,
    )
    project.settings.gates = GateSettings(metric="r2", threshold=0.3)
    settings = training_params(dataset="diabetes", entrypoint="team_features:train")
    result = train_and_register(project, diabetes, settings)
    expected = mlflow.pyfunc.load_model(result.model_uri).predict(diabetes.X_test)
    sys.modules.pop("team_features")
    sys.path.remove(str(tmp_path))
    reloaded = mlflow.pyfunc.load_model(f"models:/{project.model_name}/{result.version}")
    assert reloaded.predict(diabetes.X_test).tolist() == expected.tolist()
    assert gates.evaluate_gate(project, result.version, diabetes).passed


def test_a_lightgbm_model_is_logged_with_its_own_flavour(tmp_path, user_code, project, diabetes):
    pytest.importorskip("lightgbm")
    from mlflow.models import Model

    from mlops_kit.registry.client import Registry

    user_code(
        "boosted",
        """
        import lightgbm

        def train(data, params):
            model = lightgbm.LGBMRegressor(n_estimators=20, verbose=-1, random_state=1)
            return model.fit(data.X_train, data.y_train)
        """,
    )
    project.settings.gates = GateSettings(metric="mae", threshold=80.0)
    settings = training_params(dataset="diabetes", entrypoint="boosted:train")
    result = train_and_register(project, diabetes, settings)
    registry = Registry(project)
    assert "lightgbm" in Model.load(str(registry.local_path(result.version) / "MLmodel")).flavors
    served = registry.load_model(result.version).predict(diabetes.X_test)
    assert served.tolist() == pytest.approx(
        entrypoint.run("boosted:train", diabetes, {}, tmp_path).predict(diabetes.X_test).tolist()
    )
    verdict = gates.evaluate_gate(project, result.version, diabetes)
    assert verdict.passed and verdict.challenger_value == pytest.approx(result.metrics["mae"])

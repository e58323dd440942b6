"""Registering the test-hook model (``faulty_model.py``) as the next version of a project's model.

The model answers its own input example correctly and misbehaves on every other row (see
``faulty_model.py``): it passes the smoke test every version must pass on its way to
production, then fails on live traffic, the candidate a rollout must catch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

FAULTY = Path(__file__).with_name("faulty_model.py")


def register_faulty(project: Any, data: Any, fault: str, delay: float = 0.4) -> str:
    """Register the faulty model (``fault``: ``error`` or ``slow``); its version."""
    import mlflow
    from mlflow.models import infer_signature

    example = data.X_test.head(3)
    project.client  # noqa: B018 - points the fluent API at the project's registry
    with mlflow.start_run(run_name=f"faulty-{fault}"):
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(FAULTY),
            model_config={"fault": fault, "delay": delay, "spare": example.iloc[:, 0].tolist()},
            signature=infer_signature(data.X_test, data.y_test.to_numpy()),
            input_example=example,
            registered_model_name=project.model_name,
        )
    return str(info.registered_model_version)

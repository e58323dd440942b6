"""Helpers shared by the progressive-rollout tests: a candidate that misbehaves, an approval."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tests.support.signers import key

if TYPE_CHECKING:
    from mlops_kit.project import Project
    from mlops_kit.promote.approvals import PromotionRequest

FAULTY = Path(__file__).parent / "faulty_model.py"


def register_faulty(project: Project, data, fault: str, delay: float = 0.4) -> str:
    """Register the test-hook model (``faulty_model.py``) as the next version: it answers its
    own input example (so it passes the smoke test every version must pass on its way to
    production) and, on live traffic, raises (``error``) or sleeps ``delay`` (``slow``)."""
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


def promote(project: Project, version: str, to_env: str = "production") -> PromotionRequest:
    """Open a request for ``version`` and approve it as bob (signed): the rollout runs."""
    from mlops_kit.promote.promotion import Promotions

    promotions = Promotions(project)
    request = promotions.open(version, to_env=to_env, requested_by="alice")
    return promotions.approve(request.id, "bob", "go", signing_key=key(project, "bob"))

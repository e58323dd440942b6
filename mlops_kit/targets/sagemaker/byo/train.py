"""The container's ``train`` program: SageMaker runs it as ``docker run IMAGE train``.

It reads the job's hyperparameters and channels (:mod:`~.contract`), trains with the toolkit's
own estimators and scoring (:mod:`mlops_kit.train.training`), and saves an MLflow model into
``model/``, which SageMaker uploads as ``model.tar.gz`` and the registry and MLServer load as
they load a model the toolkit logged. The held-out metrics go to ``output/data/metrics.json``
and to the log as ``mlops-kit metric <name>=<value>`` lines, which
:data:`~.contract.METRIC_REGEX` matches for a job's ``MetricDefinitions``.

On failure it writes the reason, one line, to ``output/failure`` (the job's FailureReason)
and exits non-zero: the toolkit's exit code (2 for a bad hyperparameter or bad data), else 1.

    MLOPS_KIT_SAGEMAKER_ROOT=/tmp/ml python -m mlops_kit.targets.sagemaker.byo.train
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import traceback
from pathlib import Path
from typing import Any

from mlops_kit.errors import ConfigError, ToolkitError
from mlops_kit.targets.sagemaker.byo import data, hyperparameters
from mlops_kit.targets.sagemaker.byo.contract import Layout

log = logging.getLogger("mlops_kit.sagemaker.train")

MAX_FAILURE = 1024
"""SageMaker keeps at most this many characters of a FailureReason."""


def read_hyperparameters(path: Path) -> dict[str, Any]:
    """The JSON object at ``path``; an empty one when SageMaker wrote none."""
    if not path.is_file():
        return {}
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the hyperparameters in {path}: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must hold a JSON object, not {type(raw).__name__}")
    return raw


def train(layout: Layout) -> dict[str, float]:
    """Train as the job's hyperparameters say and save the model; returns the held-out metrics."""
    import mlflow.sklearn
    from mlflow.models import infer_signature

    from mlops_kit import __version__
    from mlops_kit.train.training import (
        PIP_REQUIREMENTS,
        TAG_PREFIX,
        build_estimator,
        score,
        trusted_types,
    )

    params, target = hyperparameters.decode(read_hyperparameters(layout.hyperparameters))
    model_dir = layout.model_dir
    if model_dir.is_dir() and any(model_dir.iterdir()):
        raise ConfigError(f"{model_dir} is not empty: the model would mix with what is there")
    dataset = data.load(layout, target, params)
    estimator = build_estimator(params)
    rows, features = dataset.X_train.shape
    log.info(
        "training %s: %d rows of %d features, %d held out",
        params.model_type,
        rows,
        features,
        len(dataset.X_test),
    )
    estimator.fit(dataset.X_train, dataset.y_train)
    metrics = score(estimator, dataset.X_test, dataset.y_test)
    mlflow.sklearn.save_model(
        estimator,
        str(model_dir),
        signature=infer_signature(dataset.X_test, estimator.predict(dataset.X_test)),
        input_example=dataset.X_test.head(3),
        pip_requirements=PIP_REQUIREMENTS,
        skops_trusted_types=trusted_types(estimator),
        metadata={
            f"{TAG_PREFIX}data_fingerprint": dataset.fingerprint,
            f"{TAG_PREFIX}target": target,
            f"{TAG_PREFIX}toolkit_version": __version__,
            f"{TAG_PREFIX}training_job": os.environ.get("TRAINING_JOB_NAME", ""),
            "params": params.model_dump(include=set(hyperparameters.TRAINING_NAMES)),
            "metrics": metrics,
        },
    )
    layout.output_data.mkdir(parents=True, exist_ok=True)
    (layout.output_data / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def failure_reason(exc: BaseException) -> str:
    """One line for FailureReason: a toolkit error's message, else the exception's type too."""
    text = str(exc) if isinstance(exc, ToolkitError) else f"{type(exc).__name__}: {exc}"
    text = " ".join(text.split())
    return text if len(text) <= MAX_FAILURE else text[: MAX_FAILURE - 3] + "..."


def main() -> int:
    """Run training; on failure write ``output/failure`` and return a non-zero exit code."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    layout = Layout.from_env()
    try:
        metrics = train(layout)
    except Exception as exc:
        reason = failure_reason(exc)
        if not isinstance(exc, ToolkitError):
            traceback.print_exc()
        log.error("training failed: %s", reason)
        layout.failure.parent.mkdir(parents=True, exist_ok=True)
        layout.failure.write_text(reason + "\n")
        return exc.exit_code if isinstance(exc, ToolkitError) else 1
    for name, value in sorted(metrics.items()):
        log.info("mlops-kit metric %s=%.6f", name, value)
    log.info("saved the model in %s", layout.model_dir)
    return 0


def _exit_on_sigterm(signum: int, frame: object) -> None:
    # Run as the container's PID 1, a process that leaves SIGTERM at its default ignores it:
    # StopTrainingJob would then wait out its grace period for the SIGKILL.
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    sys.exit(main())

"""Train on SageMaker: a training job with the BYO image, then the result registered in MLflow.

The seed pipeline's TrainModel and TrainStatus stages. The project's training and held-out
rows go to S3 as the ``train`` and ``validation`` channels, one CSV each (a header row, the
features, then the label column ``target``), under a key named by their sha256;
``CreateTrainingJob`` runs ``sagemaker.image_uri`` on them with the training parameters as
hyperparameters (strings, as SageMaker passes them). The job is polled until it
ends; ``Failed`` or ``Stopped`` raise :class:`~mlops_kit.errors.TrainingJobFailed` with
SageMaker's reason, and an interrupted wait (Ctrl-C, a notebook's stop button) stops the job
before it returns. The job's ``model.tar.gz`` (an MLflow model directory) is then scored on
the held-out rows and registered as a version, with the lineage tags of local training plus
the job's ARN, the archive's S3 URI and the data's S3 URI and sha256, and becomes a model
package pending approval in SageMaker's registry (:mod:`.model_packages`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_kit import display
from mlops_kit.errors import RegistryError, TrainingJobFailed, WaitTimeout
from mlops_kit.process import wait_until
from mlops_kit.targets.sagemaker import names
from mlops_kit.targets.sagemaker.artifacts import ARCHIVE
from mlops_kit.targets.sagemaker.clients import client, ensure_bucket, s3_uri, split_s3_uri
from mlops_kit.targets.sagemaker.container import unpack_model

if TYPE_CHECKING:
    import pandas as pd

    from mlops_kit.project import Project
    from mlops_kit.settings import TrainingSettings
    from mlops_kit.settings_sagemaker import SageMakerSettings
    from mlops_kit.train.training import Dataset, TrainingResult

logger = logging.getLogger(__name__)

TRAIN = "train"
"""The channel of training rows."""
VALIDATION = "validation"
"""The channel of held-out rows the job's metrics are computed on."""
LABEL_COLUMN = "target"
ENDED = ("Completed", "Failed", "Stopped")


def channel_csv(X: pd.DataFrame, y: pd.Series) -> bytes:
    """Rows as CSV: a header row, the feature columns, then the label column ``target``."""
    frame = X.copy()
    frame[LABEL_COLUMN] = y.to_numpy()
    return frame.to_csv(index=False).encode()


def hyperparameters(params: TrainingSettings) -> dict[str, str]:
    """The training parameters as SageMaker hyperparameters (strings), and the label column.

    Strings as they are, anything else as JSON (``null`` for unset): what the BYO
    container's ``train`` reads back into the same :class:`~mlops_kit.settings.TrainingSettings`.
    """
    from mlops_kit.targets.sagemaker.byo.hyperparameters import SOURCE_NAMES

    values = params.model_dump(exclude=set(SOURCE_NAMES))
    encoded = {k: v if isinstance(v, str) else json.dumps(v) for k, v in values.items()}
    return {"target": LABEL_COLUMN, **encoded}


def upload_data(
    s3: Any, config: SageMakerSettings, model_name: str, data: Dataset
) -> dict[str, tuple[str, str]]:
    """Upload the ``train`` and ``validation`` channels; each channel's S3 file URI and sha256.

    The key holds a digest of both files, so the same split is stored once.
    """
    bodies = {
        TRAIN: channel_csv(data.X_train, data.y_train),
        VALIDATION: channel_csv(data.X_test, data.y_test),
    }
    shas = {name: hashlib.sha256(body).hexdigest() for name, body in bodies.items()}
    folder = "/".join(
        p for p in (config.prefix, model_name, "data", names.digest(*shas.values(), length=16)) if p
    )
    uploaded = {}
    for name, body in bodies.items():
        key = f"{folder}/{name}/{name}.csv"
        s3.put_object(Bucket=config.bucket, Key=key, Body=body, ContentType="text/csv")
        uploaded[name] = (s3_uri(config.bucket, key), shas[name])
    return uploaded


def _channel(name: str, file_uri: str) -> dict[str, Any]:
    return {
        "ChannelName": name,
        "ContentType": "text/csv",
        "DataSource": {
            "S3DataSource": {
                "S3DataType": "S3Prefix",
                "S3Uri": file_uri.rsplit("/", 1)[0] + "/",
                "S3DataDistributionType": "FullyReplicated",
            }
        },
    }


def job_name_for(model_name: str) -> str:
    """A fresh training job name: ``<model>-<UTC time>-<random>``."""
    import secrets

    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    return names.resource_name(model_name, stamp, secrets.token_hex(3))


def train_on_sagemaker(
    project: Project,
    data: Dataset,
    params: TrainingSettings,
    *,
    job_name: str | None = None,
    pipeline_run_id: str | None = None,
    timeout: float | None = None,
) -> TrainingResult:
    """Run a SageMaker training job on ``data`` and register its model; see the module doc."""
    settings = project.settings
    config = settings.sagemaker
    s3, sm = client(config, "s3"), client(config, "sagemaker")
    ensure_bucket(s3, config.bucket, config.region)
    channels = upload_data(s3, config, settings.model_name, data)
    job = job_name or job_name_for(settings.model_name)
    output = s3_uri(
        config.bucket, "/".join(p for p in (config.prefix, settings.model_name, "training") if p)
    )
    sm.create_training_job(
        TrainingJobName=job,
        AlgorithmSpecification={"TrainingImage": config.image_uri, "TrainingInputMode": "File"},
        RoleArn=config.role_arn,
        HyperParameters=hyperparameters(params),
        InputDataConfig=[_channel(name, uri) for name, (uri, _) in channels.items()],
        OutputDataConfig={"S3OutputPath": output},
        ResourceConfig={
            "InstanceType": config.training_instance_type,
            "InstanceCount": 1,
            "VolumeSizeInGB": 10,
        },
        StoppingCondition={"MaxRuntimeInSeconds": config.max_runtime},
        Tags=names.tag_list(
            {names.PROJECT_TAG: settings.project, names.MODEL_TAG: settings.model_name}
        ),
    )
    logger.info("training job %s started on %s", job, channels[TRAIN][0])
    described = wait_for_job(sm, job, timeout or config.training_timeout, config.poll_interval)
    artifact = described["ModelArtifacts"]["S3ModelArtifacts"]
    lineage = {
        "sagemaker.training_job_arn": described["TrainingJobArn"],
        "sagemaker.model_data": artifact,
        "data_s3_uri": channels[TRAIN][0],
        "data_sha256": channels[TRAIN][1],
        "validation_s3_uri": channels[VALIDATION][0],
        "validation_sha256": channels[VALIDATION][1],
    }
    with tempfile.TemporaryDirectory(prefix="mlops-kit-job-") as tmp:
        bucket, key = split_s3_uri(artifact)
        s3.download_file(bucket, key, str(Path(tmp) / ARCHIVE))
        model_dir = unpack_model(Path(tmp) / ARCHIVE, Path(tmp) / "model")
        result = register_model_dir(
            project, model_dir, data, params, lineage, pipeline_run_id=pipeline_run_id
        )
    from mlops_kit.targets.sagemaker.model_packages import register_version

    register_version(
        sm,
        config,
        project=settings.project,
        model_name=result.model_name,
        version=result.version,
        model_data_url=artifact,
    )
    return result


def wait_for_job(sm: Any, job: str, timeout: float, interval: float) -> dict[str, Any]:
    """Poll DescribeTrainingJob until the job ends; its description when ``Completed``.

    Logs each secondary status. Stops the job on KeyboardInterrupt (then re-raises) and when
    ``timeout`` passes; raises TrainingJobFailed unless it completed.
    """
    began = time.monotonic()
    seen: list[str] = []

    def ended() -> dict[str, Any] | None:
        described = dict(sm.describe_training_job(TrainingJobName=job))
        secondary = described.get("SecondaryStatus") or described["TrainingJobStatus"]
        if not seen or seen[-1] != secondary:
            seen.append(secondary)
            logger.info("training job %s: %s (%.1f s)", job, secondary, time.monotonic() - began)
        return described if described["TrainingJobStatus"] in ENDED else None

    try:
        described = wait_until(
            ended, timeout=timeout, interval=interval, what=f"training job {job}"
        )
    except KeyboardInterrupt:
        _stop(sm, job)
        raise
    except WaitTimeout:
        _stop(sm, job)
        raise TrainingJobFailed(
            job, "Stopped", f"no result within {timeout:g} s; stopped"
        ) from None
    assert described is not None  # wait_until returns only a truthy value
    status = described["TrainingJobStatus"]
    if status != "Completed":
        raise TrainingJobFailed(job, status, described.get("FailureReason", ""))
    return described


def _stop(sm: Any, job: str) -> None:
    logger.warning("stopping training job %s", job)
    try:
        sm.stop_training_job(TrainingJobName=job)
    except Exception as exc:  # it may have ended meanwhile: nothing left to stop
        logger.warning("could not stop training job %s: %s", job, exc)


def register_model_dir(
    project: Project,
    model_dir: Path,
    data: Dataset,
    params: TrainingSettings,
    extra_lineage: dict[str, str],
    *,
    pipeline_run_id: str | None = None,
) -> TrainingResult:
    """Score an MLflow model directory on the held-out rows and register it as a version.

    The run and the version carry the tags local training gives (:func:`~mlops_kit.train.
    training.lineage`) and ``extra_lineage`` under the same ``mlops.`` prefix.
    """
    import mlflow
    import mlflow.pyfunc

    from mlops_kit.train.runs import fail_stale_runs, owner_tags
    from mlops_kit.train.training import TAG_PREFIX, TrainingResult, lineage, score
    from mlops_kit.verify.smoke import trusted_models

    client = project.client
    project.experiment_id()
    fail_stale_runs(project)
    tags = {**lineage(data, pipeline_run_id)}
    tags.update({f"{TAG_PREFIX}{key}": value for key, value in extra_lineage.items()})
    with (
        display.quiet(),
        trusted_models(),
        mlflow.start_run(run_name=f"sagemaker-{data.name}-{params.model_type}") as run,
    ):
        mlflow.log_params(params.model_dump())
        mlflow.set_tags({**tags, **owner_tags()})
        metrics = score(mlflow.pyfunc.load_model(str(model_dir)), data.X_test, data.y_test)
        mlflow.log_metrics(metrics)
        mlflow.log_artifacts(str(model_dir), artifact_path="model")
        try:
            version = mlflow.register_model(f"runs:/{run.info.run_id}/model", project.model_name)
        except Exception as exc:
            raise RegistryError(f"could not register the trained model: {exc}") from exc
    number = str(version.version)
    for key, value in {**tags, f"{TAG_PREFIX}run_id": run.info.run_id}.items():
        client.set_model_version_tag(project.model_name, number, key, value)
    return TrainingResult(
        model_name=project.model_name,
        version=number,
        run_id=run.info.run_id,
        model_uri=f"models:/{project.model_name}/{number}",
        metrics=metrics,
        params=params.model_dump(),
        lineage=tags,
    )


__all__ = [
    "LABEL_COLUMN",
    "TRAIN",
    "VALIDATION",
    "channel_csv",
    "hyperparameters",
    "register_model_dir",
    "train_on_sagemaker",
    "upload_data",
    "wait_for_job",
]

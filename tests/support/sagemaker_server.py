"""What moto's SageMaker lacks, added to the moto server that runs in the test process.

moto (5.2) keeps SageMaker's control plane: it records training jobs (and completes them at
once without running anything), models, endpoint configs and endpoints (InService at once),
model packages with their approval status. It answers ``UpdateEndpoint`` and
``StopTrainingJob`` with 500 and ``InvokeEndpoint`` with canned bodies. :func:`install` adds,
to moto's own backend and response classes, so the same server and the real boto3 clients
serve them:

- ``UpdateEndpoint``: validates the endpoint (exists, InService) and the new endpoint config
  (exists) as SageMaker does, turns the endpoint ``Updating`` with a
  ``PendingDeploymentSummary`` and, :data:`UPDATE_SECONDS` later, switches it to the new
  config, ``InService`` — or rolls it back to the old one when an alarm of its
  ``AutoRollbackConfiguration`` is in :data:`ALARMS`. The ``DeploymentConfig`` of each call is
  kept in :data:`UPDATES`. :func:`fail_endpoint` makes an endpoint ``Failed``.
- Training jobs that run: ``CreateTrainingJob`` leaves the job ``InProgress`` while a thread
  lays out SageMaker's ``/opt/ml`` tree in a temporary directory (channels downloaded from
  the job's S3 URIs, ``hyperparameters.json``), trains, and uploads ``model.tar.gz`` to
  ``<S3OutputPath>/<job>/output/model.tar.gz``; the job ends ``Completed``, or ``Failed``
  with the reason the program wrote to ``output/failure``. Training runs the BYO container's
  ``train`` program (``python -m mlops_kit.targets.sagemaker.byo.train``) as a plain local
  process. :func:`hold_jobs` keeps jobs waiting
  before they train, so a test can stop one.
- ``StopTrainingJob``: an ``InProgress`` job goes ``Stopping`` then ``Stopped`` (its process
  is terminated); any other status is refused with SageMaker's ValidationException.
- Shadow variants: ``CreateEndpointConfig`` keeps its ``ShadowProductionVariants`` (their
  Models must exist, as for production variants), ``DescribeEndpointConfig`` returns them and
  ``DescribeEndpoint`` shows those of the endpoint's current config with their weights.
- ``InvokeEndpoint`` as SageMaker answers it (:mod:`tests.support.sagemaker_runtime`): a
  production variant drawn by its weight (or the caller's ``TargetVariant``) answers with its
  own model, the BYO container's ``/invocations`` app in-process, and is named in
  ``x-Amzn-Invoked-Production-Variant``; each invocation puts SageMaker's per-variant metrics
  (``AWS/SageMaker``: Invocations, Invocation4XX/5XXErrors, ModelLatency) into moto's own
  CloudWatch, whose ``GetMetricData`` learns percentile statistics (``p99``).

What stays emulated: no instances, no containers, no IAM; CloudWatch alarms are a set the
test fills (metrics do not drive them), and an update's traffic shift is a switch after a
fixed delay.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support import sagemaker_runtime

UPDATE_SECONDS = 0.3
"""How long an endpoint stays ``Updating`` after UpdateEndpoint."""
UPDATES: list[dict[str, Any]] = []
"""Every UpdateEndpoint call served: endpoint, config and DeploymentConfig."""
ALARMS: set[str] = set()
"""CloudWatch alarms in ALARM state: an update naming one in its AutoRollbackConfiguration
is rolled back when it would have completed."""

_installed: dict[str, str] = {}
_hold = threading.Event()
_lock = threading.Lock()


@dataclass
class _Run:
    """A training job being run: its thread, its process (BYO ``train``) and a stop flag."""

    stop: threading.Event = field(default_factory=threading.Event)
    process: subprocess.Popen[bytes] | None = None
    thread: threading.Thread | None = None


_runs: dict[str, _Run] = {}
_pending: dict[tuple[str, str, str], tuple[str, float, list[str]]] = {}


def install(server_url: str) -> None:
    """Add the missing APIs to moto's classes (once per process); S3 is read at ``server_url``."""
    with _lock:
        _installed["url"] = server_url
        if _installed.get("done"):
            return
        from moto.sagemaker.models import SageMakerModelBackend
        from moto.sagemaker.responses import SageMakerResponse

        backend: Any = SageMakerModelBackend
        backend.update_endpoint = _update_endpoint
        backend.stop_training_job = _stop_training_job
        original_describe = backend.describe_endpoint
        original_create_job = backend.create_training_job

        def describe_endpoint(self: Any, endpoint_name: str) -> dict[str, Any]:
            _settle(self, endpoint_name)
            described = original_describe(self, endpoint_name)
            pending = _pending.get((self.account_id, self.region_name, endpoint_name))
            if pending is not None:
                described["PendingDeploymentSummary"] = {"EndpointConfigName": pending[0]}
            endpoint = self.endpoints[endpoint_name]
            config = self.endpoint_configs.get(endpoint.endpoint_config_name)
            shadows = getattr(config, "shadow_production_variants", None)
            if shadows:
                described["ShadowProductionVariants"] = endpoint._process_production_variants(
                    shadows
                )
            return described

        def create_training_job(self: Any, training_job_name: str, **kwargs: Any) -> Any:
            job = original_create_job(self, training_job_name, **kwargs)
            job.training_job_status = "InProgress"
            job.secondary_status = "Starting"
            run = _Run()
            _runs[job.arn] = run
            run.thread = threading.Thread(target=_run_job, args=(job, run), daemon=True)
            run.thread.start()
            return job

        backend.describe_endpoint = describe_endpoint
        backend.create_training_job = create_training_job
        response: Any = SageMakerResponse
        response.update_endpoint = _respond_update_endpoint
        original_create_config = response.create_endpoint_config

        def create_endpoint_config(self: Any) -> Any:
            shadows = self._get_param("ShadowProductionVariants")
            if shadows:
                self.sagemaker_backend.validate_production_variants(shadows)
            result = original_create_config(self)
            if shadows:
                name = self._get_param("EndpointConfigName")
                self.sagemaker_backend.endpoint_configs[name].shadow_production_variants = shadows
            return result

        response.create_endpoint_config = create_endpoint_config
        response.stop_training_job = _respond_stop_training_job
        sagemaker_runtime.install()
        _installed["done"] = "yes"


def reset() -> None:
    """Stop running jobs and forget loaded models and updates (between tests)."""
    _hold.clear()
    for run in list(_runs.values()):
        run.stop.set()
        if run.process is not None and run.process.poll() is None:
            run.process.terminate()
        if run.thread is not None:
            run.thread.join(timeout=30)
    _runs.clear()
    _pending.clear()
    sagemaker_runtime.reset()
    UPDATES.clear()
    ALARMS.clear()


@contextlib.contextmanager
def hold_jobs() -> Iterator[None]:
    """Training jobs created within wait ``InProgress`` (until stopped or the block ends)."""
    _hold.set()
    try:
        yield
    finally:
        _hold.clear()


def fail_endpoint(account_id: str, endpoint_name: str, reason: str) -> None:
    """Make an endpoint ``Failed`` with ``reason``, as SageMaker does when its instances fail."""
    from moto.sagemaker.models import sagemaker_backends

    endpoint = sagemaker_backends[account_id]["us-east-1"].endpoints[endpoint_name]
    endpoint.endpoint_status = "Failed"
    endpoint.failure_reason = reason


def wait_for_jobs(timeout: float = 120.0) -> None:
    """Wait until every training job thread has finished."""
    for run in list(_runs.values()):
        if run.thread is not None:
            run.thread.join(timeout=timeout)


# -- UpdateEndpoint ------------------------------------------------------------------------------


def _update_endpoint(
    self: Any, endpoint_name: str, endpoint_config_name: str, deployment_config: dict | None
) -> str:
    from moto.sagemaker.exceptions import ValidationError
    from moto.sagemaker.models import FakeEndpoint, FakeEndpointConfig

    _settle(self, endpoint_name)
    endpoint = self.endpoints.get(endpoint_name)
    if endpoint is None:
        arn = FakeEndpoint.arn_formatter(endpoint_name, self.account_id, self.region_name)
        raise ValidationError(message=f"Could not find endpoint '{arn}'.")
    if endpoint.endpoint_status != "InService":
        raise ValidationError(
            message=f'Cannot update in-progress endpoint "{endpoint.arn}".'
            if endpoint.endpoint_status in ("Creating", "Updating")
            else f"Endpoint {endpoint.arn} is {endpoint.endpoint_status}; it cannot be updated."
        )
    if endpoint_config_name not in self.endpoint_configs:
        arn = FakeEndpointConfig.arn_formatter(
            endpoint_config_name, self.account_id, self.region_name
        )
        raise ValidationError(message=f"Could not find endpoint configuration '{arn}'.")
    _check_deployment_config(deployment_config)
    endpoint.endpoint_status = "Updating"
    rollback = (deployment_config or {}).get("AutoRollbackConfiguration") or {}
    _pending[(self.account_id, self.region_name, endpoint_name)] = (
        endpoint_config_name,
        time.monotonic() + UPDATE_SECONDS,
        [alarm["AlarmName"] for alarm in rollback.get("Alarms", [])],
    )
    UPDATES.append(
        {
            "EndpointName": endpoint_name,
            "EndpointConfigName": endpoint_config_name,
            "DeploymentConfig": deployment_config,
        }
    )
    return str(endpoint.arn)


def _check_deployment_config(config: dict | None) -> None:
    from moto.sagemaker.exceptions import ValidationError

    if not config:
        return
    routing = (config.get("BlueGreenUpdatePolicy") or {}).get("TrafficRoutingConfiguration")
    if routing is None:
        if "RollingUpdatePolicy" in config:
            return
        raise ValidationError(message="DeploymentConfig needs a BlueGreenUpdatePolicy")
    kind = routing.get("Type")
    needed = {"ALL_AT_ONCE": None, "CANARY": "CanarySize", "LINEAR": "LinearStepSize"}
    if kind not in needed:
        raise ValidationError(message=f"TrafficRoutingConfiguration.Type {kind!r} is invalid")
    if needed[kind] and needed[kind] not in routing:
        raise ValidationError(message=f"{kind} traffic routing needs {needed[kind]}")


def _settle(backend: Any, endpoint_name: str) -> None:
    """Finish an update whose time has come: the new config, InService (or, when one of its
    rollback alarms is in ALARM, the old config, InService)."""
    key = (backend.account_id, backend.region_name, endpoint_name)
    pending = _pending.get(key)
    if pending is None or time.monotonic() < pending[1]:
        return
    del _pending[key]
    endpoint = backend.endpoints.get(endpoint_name)
    config = backend.endpoint_configs.get(pending[0])
    if endpoint is None or config is None:
        return
    from moto.core.utils import utcnow

    endpoint.endpoint_status = "InService"
    endpoint.last_modified_time = utcnow()
    if ALARMS & set(pending[2]):
        return
    endpoint.endpoint_config_name = pending[0]
    endpoint.production_variants = endpoint._process_production_variants(config.production_variants)


def _respond_update_endpoint(self: Any) -> Any:
    from moto.core.responses import ActionResult

    arn = self.sagemaker_backend.update_endpoint(
        self._get_param("EndpointName"),
        self._get_param("EndpointConfigName"),
        self._get_param("DeploymentConfig"),
    )
    return ActionResult({"EndpointArn": arn})


# -- training jobs that run ----------------------------------------------------------------------


def _stop_training_job(self: Any, training_job_name: str) -> None:
    from moto.sagemaker.exceptions import ValidationError
    from moto.sagemaker.models import FakeTrainingJob

    job = self.training_jobs.get(training_job_name)
    if job is None:
        arn = FakeTrainingJob.arn_formatter(training_job_name, self.account_id, self.region_name)
        raise ValidationError(message=f"Could not find training job '{arn}'.")
    if job.training_job_status != "InProgress":
        raise ValidationError(
            message=f"The request was rejected because the training job is in status "
            f"{job.training_job_status}."
        )
    job.training_job_status = "Stopping"
    job.secondary_status = "Stopping"
    run = _runs.get(job.arn)
    if run is not None:
        run.stop.set()
        if run.process is not None and run.process.poll() is None:
            run.process.terminate()


def _respond_stop_training_job(self: Any) -> Any:
    from moto.core.responses import EmptyResult

    self.sagemaker_backend.stop_training_job(self._get_param("TrainingJobName"))
    return EmptyResult()


def _s3() -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=_installed["url"],
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 - moto's fake credentials
    )


def _split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def _run_job(job: Any, run: _Run) -> None:
    """Run one training job as SageMaker would, and record how it ended on the job."""
    from moto.core.utils import utcnow

    def finish(status: str, reason: str | None = None) -> None:
        job.training_job_status = status
        job.secondary_status = status
        if reason:
            job.failure_reason = reason[:1024]
        job.training_end_time = job.last_modified_time = utcnow()

    with tempfile.TemporaryDirectory(prefix="sagemaker-job-") as tmp:
        root = Path(tmp)
        try:
            while _hold.is_set() and not run.stop.is_set():
                run.stop.wait(0.05)
            if run.stop.is_set():
                return finish("Stopped")
            job.secondary_status = "Downloading"
            s3 = _s3()
            for channel in job.input_data_config or []:
                bucket, prefix = _split(channel["DataSource"]["S3DataSource"]["S3Uri"])
                folder = root / "input" / "data" / channel["ChannelName"]
                folder.mkdir(parents=True, exist_ok=True)
                listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
                for item in listed:
                    s3.download_file(bucket, item["Key"], str(folder / Path(item["Key"]).name))
            config = root / "input" / "config"
            config.mkdir(parents=True)
            (config / "hyperparameters.json").write_text(json.dumps(job.hyper_parameters or {}))
            job.secondary_status = "Training"
            failure = _train(root, job.training_job_name, run)
            if run.stop.is_set():
                return finish("Stopped")
            if failure is not None:
                return finish("Failed", failure)
            job.secondary_status = "Uploading"
            from mlops_kit.targets.sagemaker.container import pack_model

            archive = pack_model(root / "model", root / "model.tar.gz")
            bucket, key = _split(job.model_artifacts["S3ModelArtifacts"])
            s3.upload_file(str(archive), bucket, key)
            finish("Completed")
        except Exception as exc:  # the job fails, as SageMaker's would, with the reason
            finish("Failed", f"AlgorithmError: {type(exc).__name__}: {exc}")


def _train(root: Path, job_name: str, run: _Run) -> str | None:
    """Train in the ``/opt/ml`` tree at ``root``; the failure reason, or None on success."""
    (root / "model").mkdir(exist_ok=True)
    env = {**os.environ, "MLOPS_KIT_SAGEMAKER_ROOT": str(root), "TRAINING_JOB_NAME": job_name}
    with open(root / "train.log", "wb") as log:
        run.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "mlops_kit.targets.sagemaker.byo.train"],
            cwd=root,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        code = run.process.wait(timeout=600)
    if code == 0:
        return None
    failure = root / "output" / "failure"
    return failure.read_text().strip() if failure.is_file() else f"train exited {code}"

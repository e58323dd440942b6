"""The custom flavour of the local target: a user's class behind seldon-core's wrapper.

The wrapper runs with the interpreter of its own environment (see
:mod:`mlops_kit.serving.seldon`) and speaks the Seldon protocol. Its process serves one
version, so a new version starts a second process beside the first (see
:class:`~mlops_kit.targets.local.LocalTarget`).
"""

from __future__ import annotations

import json
import logging
import os
import signal
from dataclasses import dataclass
from pathlib import Path

from mlops_kit import artifacts
from mlops_kit.deployment import DeploymentSpec
from mlops_kit.errors import ConfigError, TargetError, WaitTimeout
from mlops_kit.process import log_size, now, send_signal, spawn, wait_until
from mlops_kit.serving import seldon
from mlops_kit.settings import Settings
from mlops_kit.targets.local.mlserver import local_path
from mlops_kit.targets.local.records import LOG_FILE, STOP_GRACE, ServerRecord, alive

logger = logging.getLogger(__name__)

# The wrapper reads its own settings from these variables: ours must not leak in.
_WRAPPER_ENV = ("MLSERVER_", "PREDICTIVE_UNIT_", "SELDON_", "GUNICORN_", "PYTHON", "VIRTUAL_ENV")


@dataclass(frozen=True)
class CustomServer:
    """How to start the custom server of one deployment."""

    python: str
    interface: str
    """seldon-core's ``module.Class``."""
    implementation: str
    code_dir: str
    uri: str


def custom_server(settings: Settings, spec: DeploymentSpec) -> CustomServer:
    """How to serve ``spec`` with the custom flavour; TargetError naming what is missing."""
    serving = settings.serving
    custom_class = spec.custom_class or serving.custom_class
    if not custom_class:
        raise TargetError(
            f"flavour 'custom' is not supported by the local target yet without a class for "
            f"{spec.key}: set custom_class ('module:Class') on the deployment or in "
            "serving.custom_class"
        )
    try:
        interface = seldon.interface_name(custom_class)
    except ConfigError as exc:
        raise TargetError(str(exc)) from None
    code_dir = serving.custom_code_dir.expanduser().absolute()
    if seldon.module_file(code_dir, custom_class) is None:
        module = custom_class.partition(":")[0]
        raise TargetError(
            f"module {module!r} of custom_class {custom_class!r} is not in {code_dir} "
            "(serving.custom_code_dir)"
        )
    uri = str(local_path(spec.model_uri, artifacts.cache_dir(settings.state_dir)))
    python = seldon.seldon_python(serving.seldon_python, settings.state_dir)
    return CustomServer(
        python=str(python),
        interface=interface,
        implementation=f"seldon:{interface}",
        code_dir=str(code_dir),
        uri=uri,
    )


def launch_custom(
    folder: Path,
    spec: DeploymentSpec,
    host: str,
    custom: CustomServer,
    http_port: int,
    metrics_port: int,
) -> ServerRecord:
    """Start the wrapper for ``spec`` on these ports; its record (not yet ready, not written)."""
    parameters = [{"name": "model_uri", "value": custom.uri, "type": "STRING"}]
    command = [
        custom.python,
        str(seldon.BOOTSTRAP),
        str(folder),
        host,
        spec.version,
        custom.interface,
        "--service-type",
        "MODEL",
        "--http-port",
        str(http_port),
        "--metrics-port",
        str(metrics_port),
        "--grpc-workers",
        "0",  # no gRPC server: it could only bind 0.0.0.0
        "--parameters",
        json.dumps(parameters),
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith(_WRAPPER_ENV)}
    env.update(
        PYTHONPATH=custom.code_dir,
        PYTHONUNBUFFERED="1",
        PYTHONDONTWRITEBYTECODE="1",  # write nothing into the user's code directory
        MODEL_URI=custom.uri,
        MODEL_NAME=spec.model_name,
        MODEL_VERSION=spec.version,
    )
    proc = spawn(
        command,
        log=folder / LOG_FILE,
        what=f"seldon-core wrapper ({custom.interface}) for {spec.key} version {spec.version} "
        f"on {host}:{http_port}",
        cwd=Path(custom.code_dir),
        env=env,
    )
    return ServerRecord(
        pid=proc.pid,
        pgid=proc.pid,
        host=host,
        http_port=http_port,
        grpc_port=0,
        metrics_port=metrics_port,
        version=None,
        model_uri=custom.uri,
        implementation=custom.implementation,
        started_at=now(),
        folder=str(folder),
        protocol="seldon",
    )


def drain(record: ServerRecord, grace: float = STOP_GRACE) -> None:
    """Let the wrapper's REST server finish its requests before the group is signalled.

    The wrapper's workers report metrics to a multiprocessing manager in the same process
    group: signalling the group at once kills the manager under a request in flight (HTTP
    500, "Broken pipe"). Its REST gunicorn runs in the leader, so SIGTERM the leader alone
    first and wait for that gunicorn to say it has shut down.
    """
    if not alive(record):
        return
    log = Path(record.folder) / LOG_FILE
    offset = log_size(log)
    send_signal(record.pid, signal.SIGTERM, group=False)
    done = f"[{record.pid}] [INFO] Shutting down: Master".encode()

    def drained() -> bool:
        try:
            with open(log, "rb") as handle:
                handle.seek(offset)
                if done in handle.read():
                    return True
        except OSError:
            return True
        return not alive(record)

    try:
        wait_until(drained, timeout=grace, interval=0.05, what="the custom server to drain")
    except WaitTimeout:
        logger.warning("custom server %d did not drain in %.0f s", record.pid, grace)

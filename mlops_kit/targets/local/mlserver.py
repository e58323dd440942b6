"""The MLServer side of the local target: model rendering, settings files, launching a server."""

from __future__ import annotations

import json
import os
import secrets
import sys
from pathlib import Path
from urllib.parse import unquote, urlparse

import httpx

from mlops_kit import artifacts
from mlops_kit.deployment import DeploymentSpec
from mlops_kit.errors import ArtifactStoreError, TargetError
from mlops_kit.process import now, secret_file, spawn, write_json
from mlops_kit.serving import CONTROL_TOKEN_ENV, RUNTIME
from mlops_kit.settings import ServingSettings
from mlops_kit.targets.local import routing
from mlops_kit.targets.local.records import (
    LOG_FILE,
    MODEL_SETTINGS_FILE,
    SERVER_FILE,
    SETTINGS_FILE,
    ServerRecord,
)

CONTROL_TOKEN_FILE = "control.token"  # noqa: S105 - a file name
SKLEARN_RUNTIME = "mlserver_sklearn.SKLearnModel"

# ``mlserver start`` behind our guard (size and time limits, JSON for every refusal). Run with
# ``-c`` like ``mlserver`` itself, whose ``-m mlserver.cli.main`` warns about runpy.
_MLSERVER_MAIN = "from mlops_kit.serving.server import main; main()"
_SKLEARN_FILES = ("model.joblib", "model.pkl", "model.pickle")


def render_model(spec: DeploymentSpec, cache: Path | None = None) -> tuple[str, str]:
    """``(implementation, artifact path)`` for the spec's flavour.

    A remote ``model_uri`` is downloaded into ``cache``, e.g. :func:`artifacts.cache_dir
    <mlops_kit.artifacts.cache_dir>` of the state dir (see :func:`local_path`).
    """
    routing.check(spec)
    path = local_path(spec.model_uri, cache)
    if spec.flavour == "mlflow":
        if not (path / "MLmodel").is_file():
            raise TargetError(f"{path} is not an MLflow model directory (it has no MLmodel file)")
        return (routing.ROUTING_RUNTIME if spec.candidate else RUNTIME), str(path)
    if spec.flavour == "sklearn":
        if path.is_file():
            return SKLEARN_RUNTIME, str(path)
        for filename in _SKLEARN_FILES:
            if (path / filename).is_file():
                return SKLEARN_RUNTIME, str(path / filename)
        hint = ""
        if (path / "model.skops").is_file():
            hint = (
                " (the model is saved in the skops format, which mlserver-sklearn cannot read: "
                "serve it with flavour 'mlflow', or save it with serialization_format='pickle')"
            )
        raise TargetError(f"no {'/'.join(_SKLEARN_FILES)} in {path}{hint}")
    raise TargetError(f"flavour {spec.flavour!r} is not supported by the local target yet")


def local_path(uri: str, cache: Path | None = None) -> Path:
    """The existing local path a model URI (plain path or ``file://``) names.

    With a ``cache`` directory a remote URI (``s3://``) names the local copy of its artifacts,
    downloaded there once through MLflow (the standard AWS configuration applies).
    """
    parsed = urlparse(uri)
    if cache is not None and artifacts.is_remote(uri):
        try:
            return artifacts.download(uri, cache)
        except ArtifactStoreError as exc:
            raise TargetError(exc.message) from exc
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise TargetError(f"{uri} names another host; the local target serves local paths")
        path = Path(unquote(parsed.path))
    elif parsed.scheme and len(parsed.scheme) > 1:  # one letter: a Windows drive
        raise TargetError(
            f"the local target serves models from local paths, file:// or s3:// URIs, not {uri}; "
            "download the artifacts first"
        )
    else:
        path = Path(uri).expanduser()
    path = path.absolute()
    if not path.exists():
        raise TargetError(f"model artifacts not found at {path}")
    return path


def write_model_settings(
    folder: Path, spec: DeploymentSpec, implementation: str, uri: str, serving: ServingSettings
) -> None:
    """Write ``<folder>/<model>/model-settings.json`` for ``spec`` (and its route, if it has a
    candidate: :mod:`~mlops_kit.targets.local.routing`)."""
    if spec.candidate is not None:
        return routing.write_settings(folder, spec, uri, serving)
    parameters: dict[str, object] = {"uri": uri, "version": spec.version}
    if implementation == RUNTIME:
        # Our runtime batches by itself, keeping bad requests out of batches; MLServer's own
        # adaptive batching (max_batch_size at the top level) would fail a whole batch for one.
        parameters["extra"] = {
            "max_batch_size": serving.max_batch_size,
            "max_batch_time": serving.max_batch_time,
        }
    write_json(
        folder / spec.model_name / MODEL_SETTINGS_FILE,
        {"name": spec.model_name, "implementation": implementation, "parameters": parameters},
    )


def control_token(state_dir: Path) -> str:
    """The token MLServer's model-repository API needs from whoever loads or unloads a model.

    One per state directory (``serving/control.token``, 0600): the toolkit's processes read
    it, each server gets it through :data:`~mlops_kit.serving.CONTROL_TOKEN_ENV`.
    """
    path = Path(state_dir).absolute() / "serving" / CONTROL_TOKEN_FILE
    return secret_file(path, lambda: secrets.token_urlsafe(32))


def launch(
    folder: Path,
    spec: DeploymentSpec,
    host: str,
    implementation: str,
    uri: str,
    http_port: int,
    grpc_port: int,
    metrics_port: int,
    *,
    serving: ServingSettings,
    control_token: str,
) -> ServerRecord:
    """Write the server settings and start MLServer on these ports; record it (not yet ready).

    ``serving`` gives the limits the guard in front of MLServer enforces.
    """
    write_json(
        folder / SETTINGS_FILE,
        {
            "server_name": "mlops-kit",
            "debug": False,
            "host": host,
            "http_port": http_port,
            "grpc_port": grpc_port,
            "metrics_port": metrics_port,
            "metrics_endpoint": "/metrics",
            # uvloop >= 0.22 crashes MLServer's worker processes (MLServer #2286), and
            # in-process inference measured fastest anyway.
            "parallel_workers": 0,
            # On loopback compression buys nothing, and MLServer's GZip middleware costs
            # 10-25% more CPU per request to every client sending Accept-Encoding: gzip
            # (httpx, requests, locust), even for answers too small to compress.
            "gzip_enabled": False,
            "load_models_at_startup": True,
            "metrics_dir": str(folder / ".metrics"),
            "environments_dir": str(folder / ".envs"),
        },
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLSERVER_")}
    # MLflow 3 refuses to unpickle (or skops-load) models unless told the source is trusted;
    # the local target only serves the project's own registered models.
    env["MLFLOW_ALLOW_PICKLE_DESERIALIZATION"] = "true"
    env["PYTHONUNBUFFERED"] = "1"
    env[CONTROL_TOKEN_ENV] = control_token
    limits = [
        f"--max-request-bytes={serving.max_request_bytes}",
        f"--max-header-bytes={serving.max_header_bytes}",
        f"--read-timeout={serving.read_timeout}",
    ]
    proc = spawn(
        [sys.executable, "-c", _MLSERVER_MAIN, *limits, str(folder)],
        log=folder / LOG_FILE,
        what=f"MLServer for {spec.key} version {spec.version} on {host}:{http_port}",
        cwd=folder,
        env=env,
    )
    record = ServerRecord(
        pid=proc.pid,
        pgid=proc.pid,
        host=host,
        http_port=http_port,
        grpc_port=grpc_port,
        metrics_port=metrics_port,
        version=None,
        model_uri=uri,
        implementation=implementation,
        started_at=now(),
        folder=str(folder),
    )
    record.write(folder / SERVER_FILE)
    return record


def error_text(response: httpx.Response) -> str:
    """The error an MLServer answer carries, shortened."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:500]
    if isinstance(body, dict) and "error" in body:
        return str(body["error"])
    return json.dumps(body)[:500]

"""A candidate served beside the live version in the same MLServer, under a private name.

MLServer routes a model's unversioned endpoint to its newest loaded version, so loading the
candidate as a new version would hand it traffic at once. Loaded under another name
(``<model>--candidate-<version>``) it answers only there: smoke tests and hooks check it, then
it is unloaded, and only a candidate that passed is loaded under the model's own name.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

import httpx

from mlops_kit import artifacts
from mlops_kit.errors import TargetError, WaitTimeout
from mlops_kit.process import locked, log_tail, wait_until
from mlops_kit.targets.base import DeploymentStatus
from mlops_kit.targets.local import mlserver
from mlops_kit.targets.local.records import LOG_FILE, SERVER_FILE, ServerRecord, endpoint

if TYPE_CHECKING:
    from mlops_kit.deployment import DeploymentSpec
    from mlops_kit.targets.local.target import LocalTarget

SUFFIX = "--candidate-"
logger = logging.getLogger(__name__)


def candidate_name(spec: DeploymentSpec) -> str:
    return f"{spec.model_name}{SUFFIX}{spec.version}"


@contextmanager
def preview(target: LocalTarget, spec: DeploymentSpec) -> Iterator[DeploymentStatus | None]:
    """Yield the candidate's private status while it is loaded; None when there is no live
    MLServer to load it beside (first deployment, custom flavour)."""
    folder = target._folder(spec.model_name)
    record = ServerRecord.read(folder / SERVER_FILE) if folder.is_dir() else None
    if (
        spec.flavour == "custom"
        or record is None
        or record.protocol != "v2"
        or not target._alive(record)
    ):
        yield None
        return
    name = candidate_name(spec)
    cache = artifacts.cache_dir(target.settings.state_dir)
    implementation, uri = mlserver.render_model(spec, cache)
    private = spec.model_copy(update={"model_name": name})
    repository = f"{record.base_url}/v2/repository/models/{quote(name, safe='')}"
    timeout = target.settings.serving.ready_timeout
    with locked(folder / ".lock"):
        mlserver.write_model_settings(folder, private, implementation, uri, target.settings.serving)
        try:
            response = target._client.post(f"{repository}/load", timeout=timeout)
            if response.status_code != 200:
                raise TargetError(
                    f"candidate v{spec.version} of {spec.key} could not load "
                    f"(HTTP {response.status_code}: {mlserver.error_text(response)}); last "
                    f"lines of {folder / LOG_FILE}:\n{log_tail(folder / LOG_FILE)}"
                )
            url = endpoint(record, name)
            try:
                wait_until(
                    lambda: target._get_ok(f"{url}/ready"),
                    timeout=timeout,
                    interval=0.05,
                    what=f"candidate v{spec.version} of {spec.key} to answer",
                )
            except WaitTimeout:
                raise TargetError(
                    f"candidate v{spec.version} of {spec.key} does not answer"
                ) from None
        except BaseException:
            _unload(target, repository, folder / name)
            raise
    status = DeploymentStatus(
        environment=target.environment.name,
        model_name=name,
        version=spec.version,
        ready=True,
        endpoint=url,
        detail=f"candidate beside live v{record.version}; no client is routed here",
        pid=record.pid,
        metrics_url=record.metrics_url,
    )
    try:
        yield status
    finally:
        with locked(folder / ".lock"):
            _unload(target, repository, folder / name)


def _unload(target: LocalTarget, repository: str, settings_dir: Path) -> None:
    try:
        target._client.post(f"{repository}/unload", timeout=10)
    except httpx.HTTPError as exc:  # the server may be gone; its files must not linger
        logger.info("unloading the candidate at %s: %s", repository, exc)
    finally:
        shutil.rmtree(settings_dir, ignore_errors=True)

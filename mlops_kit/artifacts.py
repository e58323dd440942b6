"""Where model artifacts live: the state directory, another directory, or an S3-compatible store.

``artifact_store`` names the root MLflow writes run and model artifacts under. With an
``s3://bucket/prefix`` store the registry records ``s3://`` model locations, which a cluster
reads directly (Seldon's storage initializer, SageMaker) and this machine downloads on demand.
S3 is reached through the standard AWS configuration, read by boto3 itself: credentials,
``AWS_PROFILE``, ``AWS_REGION``, and ``AWS_ENDPOINT_URL`` (or ``AWS_ENDPOINT_URL_S3``) for an
S3-compatible store such as MinIO or Ceph. MLflow passes ``MLFLOW_S3_ENDPOINT_URL`` to boto3
when it is set, so that one wins for MLflow alone.

Part of the settings layer: it imports nothing of the toolkit but ``errors`` and ``discovery``;
boto3 and
MLflow are imported only when a remote store is used.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
from pathlib import Path
from typing import Annotated
from urllib.parse import unquote, urlparse

from pydantic import AfterValidator

from mlops_kit.discovery import PATH_OR_URL
from mlops_kit.errors import ArtifactStoreError, MissingDependencyError

REMOTE_SCHEMES = ("s3",)
"""URI schemes of stores off this machine."""

# S3 bucket naming rules: 3-63 lowercase letters, digits, dots and hyphens.
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_COMPLETE = ".complete"
CACHE_DIR = "model-cache"
"""Directory of the state dir that holds local copies of remote models (see :func:`download`)."""


def check_store(value: str | None) -> str | None:
    """``artifact_store`` as stored: None, an absolute path, ``file://`` or ``s3://bucket/prefix``.

    Raises ValueError (reported with the field's name) for any other value.
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        raise ValueError("must not be empty; leave it out to keep artifacts in the state directory")
    parsed = urlparse(value)
    if parsed.scheme == "s3":
        if not _BUCKET.fullmatch(parsed.netloc):
            raise ValueError(
                f"{parsed.netloc!r} is not an S3 bucket name (3-63 lowercase letters, digits, "
                "'.' and '-'); expected s3://bucket/prefix"
            )
        if parsed.query or parsed.fragment or parsed.params:
            raise ValueError("an s3:// store has no query or fragment; expected s3://bucket/prefix")
        prefix = parsed.path.strip("/")
        return f"s3://{parsed.netloc}/{prefix}" if prefix else f"s3://{parsed.netloc}"
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise ValueError(f"{value} names another host; a file:// store is on this machine")
        return Path(unquote(parsed.path)).as_uri()
    if parsed.scheme:
        raise ValueError(
            f"unsupported scheme {parsed.scheme!r}; use a local path, file:// or s3://bucket/prefix"
        )
    return str(Path(value).expanduser().absolute())


ArtifactStore = Annotated[str | None, PATH_OR_URL, AfterValidator(check_store)]
"""The ``artifact_store`` setting's type: relative paths in the project file anchored to it."""


def store_uri(store: str | None, default: Path) -> str:
    """The root URI of the artifact store: ``store`` as a URI, else ``default`` (a directory)."""
    if store is None:
        return default.absolute().as_uri()
    return store if urlparse(store).scheme else Path(store).as_uri()


def is_remote(uri: str) -> bool:
    """Whether ``uri`` names a store off this machine (``s3://``)."""
    return urlparse(uri).scheme in REMOTE_SCHEMES


def local_dir(uri: str) -> Path | None:
    """The directory a ``file://`` URI or plain path names; None for a remote store."""
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    return None if parsed.scheme else Path(uri)


def require_client(uri: str) -> None:
    """MissingDependencyError naming the ``s3`` extra when ``uri`` is on S3 and boto3 is missing."""
    if urlparse(uri).scheme != "s3":
        return
    try:
        import boto3  # noqa: F401 - MLflow's S3 artifact repository imports it when used
    except ImportError:
        raise MissingDependencyError("boto3", "s3") from None


def cache_dir(state_dir: Path) -> Path:
    """Where local copies of remote models live: ``<state_dir>/model-cache``."""
    return (state_dir / CACHE_DIR).absolute()


def download(uri: str, cache: Path) -> Path:
    """A local copy of the artifacts at a remote ``uri``, kept in ``cache`` and reused.

    The copy lands in a directory named after the URI's digest and is renamed into place once
    complete, so an interrupted download is never mistaken for a model. Registered versions
    never change, so a complete copy is never fetched again. ArtifactStoreError when the store
    does not deliver it.
    """
    require_client(uri)
    dest = cache / hashlib.sha256(uri.encode()).hexdigest()[:20]
    if (dest / _COMPLETE).is_file():
        return dest / "model"
    import mlflow.artifacts

    cache.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".download-", dir=cache))
    try:
        try:
            fetched = mlflow.artifacts.download_artifacts(
                artifact_uri=uri.rstrip("/"), dst_path=str(staging)
            )
        except Exception as exc:  # boto3 / MLflow: no such key, no credentials, no endpoint
            raise ArtifactStoreError(uri, str(exc) or type(exc).__name__) from exc
        Path(fetched).rename(staging / "model")
        (staging / _COMPLETE).write_text(uri + "\n")
        try:
            staging.rename(dest)
        except OSError:  # another process completed it first
            if not (dest / _COMPLETE).is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dest / "model"

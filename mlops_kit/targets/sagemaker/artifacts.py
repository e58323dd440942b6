"""Model archives in S3: what a SageMaker Model's ``ModelDataUrl`` points at.

SageMaker unpacks ``model.tar.gz`` into ``/opt/ml/model`` before the container's ``serve``
starts; our archives hold an MLflow model directory at their root (``MLmodel`` beside the
artifacts), which is what a training job's ``/opt/ml/model`` holds too.

A deployment whose ``model_uri`` already names an archive in S3 (a training job's output) is
served from it as is; a local MLflow model directory is packed and uploaded once, under a key
named by the archive's sha256, so uploading the same model again changes nothing.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from mlops_kit.errors import TargetError
from mlops_kit.targets.sagemaker.clients import s3_uri
from mlops_kit.targets.sagemaker.container import pack_model, unpack_model

if TYPE_CHECKING:
    from mlops_kit.settings_sagemaker import SageMakerSettings

ARCHIVE = "model.tar.gz"
SHA256_METADATA = "sha256"


def directory_digest(model_dir: Path) -> str:
    """sha256 over a directory's file names and bytes: the same model, the same digest."""
    digest = hashlib.sha256()
    for path in sorted(model_dir.rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(model_dir)).encode() + b"\0")
            digest.update(sha256_of(path).encode())
    return digest.hexdigest()


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def local_model_dir(model_uri: str) -> Path | None:
    """The directory a local path or ``file://`` URI names; None for remote URIs."""
    parsed = urlparse(model_uri)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if not parsed.scheme or len(parsed.scheme) == 1:  # a path (or a Windows drive letter)
        return Path(model_uri).expanduser()
    return None


def model_data_url(s3: Any, config: SageMakerSettings, model_name: str, model_uri: str) -> str:
    """The S3 URI of the archive to serve ``model_uri`` from, uploading it when needed.

    An ``s3://…/*.tar.gz`` URI is used as it is; a local MLflow model directory is packed and
    uploaded to ``s3://<bucket>/<prefix>/<model>/models/<digest>/model.tar.gz``, the digest
    being the directory's (:func:`directory_digest`), so the same model is uploaded once.
    """
    if model_uri.startswith("s3://") and model_uri.endswith(".tar.gz"):
        return model_uri
    local = local_model_dir(model_uri)
    if local is None:
        raise TargetError(
            f"the sagemaker target serves model archives in S3 (s3://…/model.tar.gz) or local "
            f"MLflow model directories, not {model_uri!r}"
        )
    if not local.is_dir():
        raise TargetError(f"model directory {local} does not exist")
    digest = directory_digest(local)
    key = "/".join(p for p in (config.prefix, model_name, "models", digest, ARCHIVE) if p)
    if not _has(s3, config.bucket, key):
        with tempfile.TemporaryDirectory(prefix="mlops-kit-archive-") as tmp:
            archive = pack_model(local, Path(tmp) / ARCHIVE)
            metadata = {SHA256_METADATA: sha256_of(archive)}
            s3.upload_file(str(archive), config.bucket, key, ExtraArgs={"Metadata": metadata})
    return s3_uri(config.bucket, key)


def _has(s3: Any, bucket: str, key: str) -> bool:
    from mlops_kit.targets.sagemaker.clients import not_found

    try:
        s3.head_object(Bucket=bucket, Key=key)
    except Exception as exc:
        if not_found(exc):
            return False
        raise
    return True


__all__ = [
    "ARCHIVE",
    "directory_digest",
    "local_model_dir",
    "model_data_url",
    "pack_model",
    "sha256_of",
    "unpack_model",
]

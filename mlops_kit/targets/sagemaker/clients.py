"""boto3 clients for the SageMaker target, imported only when first used (extra ``sagemaker``).

Clients follow the standard AWS configuration (credentials, ``AWS_ENDPOINT_URL`` for an
emulator such as moto's server); ``sagemaker.region`` overrides the configured region.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from mlops_kit.errors import ConfigError, MissingDependencyError

if TYPE_CHECKING:
    from mlops_kit.settings_sagemaker import SageMakerSettings

DEFAULT_REGION = "us-east-1"


def client(config: SageMakerSettings, service: str) -> Any:
    """A boto3 client for ``service`` (``sagemaker``, ``sagemaker-runtime``, ``s3``,
    ``cloudwatch``)."""
    try:
        import boto3
    except ImportError:
        raise MissingDependencyError("boto3", "sagemaker") from None
    session = boto3.session.Session()
    region = config.region or session.region_name or DEFAULT_REGION
    return session.client(service, region_name=region)


def error_code(exc: BaseException) -> str | None:
    """The AWS error code of a botocore ``ClientError`` (``ValidationException``...), else None."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return (response.get("Error") or {}).get("Code")
    return None


def error_message(exc: BaseException) -> str:
    """The AWS error message of a ``ClientError``, else the exception's text."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        message = (response.get("Error") or {}).get("Message")
        if message:
            return str(message)
    return str(exc)


def not_found(exc: BaseException) -> bool:
    """Whether a ``ClientError`` says the named resource does not exist.

    SageMaker answers ``ValidationException`` "Could not find ..." for a missing endpoint,
    endpoint config or model; S3 answers 404 / ``NoSuchKey``.
    """
    code = error_code(exc)
    if code in ("404", "NoSuchKey", "NotFound", "NoSuchBucket", "ResourceNotFound"):
        return True
    text = error_message(exc).lower()
    return code in ("ValidationException", "ValidationError") and (
        "could not find" in text or "does not exist" in text or "not found" in text
    )


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` as ``(bucket, key)``; ConfigError for anything else."""
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ConfigError(f"{uri!r} is not an s3://bucket/key URI")
    return parsed.netloc, parsed.path.lstrip("/")


def s3_uri(bucket: str, key: str) -> str:
    """``s3://bucket/key``."""
    return f"s3://{bucket}/{key.lstrip('/')}"


def ensure_bucket(s3: Any, bucket: str, region: str | None) -> bool:
    """Create ``bucket`` if it is missing; True when it was created."""
    try:
        s3.head_bucket(Bucket=bucket)
        return False
    except Exception as exc:
        if not not_found(exc):
            raise
    options: dict[str, Any] = {}
    if region and region != DEFAULT_REGION:
        options["CreateBucketConfiguration"] = {"LocationConstraint": region}
    s3.create_bucket(Bucket=bucket, **options)
    return True


__all__ = [
    "client",
    "ensure_bucket",
    "error_code",
    "error_message",
    "not_found",
    "s3_uri",
    "split_s3_uri",
]

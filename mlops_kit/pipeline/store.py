"""A content-addressed store: immutable blobs named by their sha256, and small JSON records.

Blobs live under ``objects/<aa>/<sha256>`` and are checked against their name whenever they
are read, so a blob altered on disk (or in the bucket) is never used: :class:`SnapshotCorrupt`.
Records (``steps/…``, ``runs/…``) are small JSON documents under a key, replaced whole.

The store is ``<state_dir>/pipeline`` on the embedded default, and ``pipeline/`` under the
artifact store when that is remote (``s3://bucket/prefix/pipeline``), so that every machine
of a team shares the step cache and the snapshots. boto3 is imported only for a remote store.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlparse

from mlops_kit import artifacts
from mlops_kit.errors import ArtifactStoreError, SnapshotCorrupt

if TYPE_CHECKING:
    from mlops_kit.project import Project

STORE_DIR = "pipeline"


def sha256(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


class _Backend(Protocol):
    def read(self, key: str) -> bytes | None: ...
    def write(self, key: str, data: bytes) -> None: ...
    def exists(self, key: str) -> bool: ...
    def list(self, prefix: str) -> list[str]: ...


class _Files:
    """Keys as files under a directory; writes are atomic (temporary file, then rename)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def read(self, key: str) -> bytes | None:
        try:
            return (self.root / key).read_bytes()
        except FileNotFoundError:
            return None

    def write(self, key: str, data: bytes) -> None:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            tmp.write_bytes(data)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        return (self.root / key).is_file()

    def list(self, prefix: str) -> list[str]:
        base = self.root / prefix
        if not base.is_dir():
            return []
        found = (p for p in base.rglob("*") if p.is_file() and not p.name.startswith("."))
        return sorted(p.relative_to(self.root).as_posix() for p in found)


class _S3:
    """Keys as objects under ``s3://bucket/prefix`` (standard AWS configuration)."""

    def __init__(self, uri: str) -> None:
        artifacts.require_client(uri)
        import boto3

        parsed = urlparse(uri)
        self.uri = uri
        self.bucket, self.prefix = parsed.netloc, parsed.path.strip("/")
        self.s3 = boto3.client("s3")

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def read(self, key: str) -> bytes | None:
        try:
            body = self.s3.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]
            return bytes(body.read())
        except self.s3.exceptions.NoSuchKey:
            return None
        except Exception as exc:
            raise ArtifactStoreError(f"{self.uri}/{key}", str(exc)) from exc

    def write(self, key: str, data: bytes) -> None:
        try:
            self.s3.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)
        except Exception as exc:
            raise ArtifactStoreError(f"{self.uri}/{key}", str(exc)) from exc

    def exists(self, key: str) -> bool:
        return self.read(key) is not None if key.endswith(".json") else bool(self.list(key))

    def list(self, prefix: str) -> list[str]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self._key(prefix)
        )
        strip = len(self.prefix) + 1 if self.prefix else 0
        return sorted(o["Key"][strip:] for page in pages for o in page.get("Contents", []))


class ContentStore:
    """Blobs by sha256 (immutable, verified on read) and JSON records by key."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        local = artifacts.local_dir(uri)
        self._backend: _Backend = _Files(local) if local is not None else _S3(uri)

    @classmethod
    def for_project(cls, project: Project) -> ContentStore:
        """The project's store: in the state dir, or in the artifact store when that is remote."""
        if artifacts.is_remote(project.artifact_uri):
            return cls(f"{project.artifact_uri.rstrip('/')}/{STORE_DIR}")
        return cls(str(project.state_dir / STORE_DIR))

    def __repr__(self) -> str:
        return f"ContentStore({self.uri!r})"

    @staticmethod
    def _object(digest: str) -> str:
        if len(digest) != 64 or not all(c in "0123456789abcdef" for c in digest):
            raise ValueError(f"{digest!r} is not a sha256 digest")
        return f"objects/{digest[:2]}/{digest}"

    def put(self, data: bytes) -> str:
        """Store ``data`` (once: equal content is stored once); its sha256."""
        digest = sha256(data)
        key = self._object(digest)
        if not self._backend.exists(key):
            self._backend.write(key, data)
        return digest

    def get(self, digest: str) -> bytes:
        """The blob named ``digest``; SnapshotCorrupt if it is missing or no longer matches."""
        data = self._backend.read(self._object(digest))
        if data is None:
            raise SnapshotCorrupt(digest, "object (missing)")
        if sha256(data) != digest:
            raise SnapshotCorrupt(digest)
        return data

    def has(self, digest: str) -> bool:
        """Whether the blob ``digest`` is stored (not whether it is intact: :meth:`get` checks)."""
        return self._backend.exists(self._object(digest))

    def put_json(self, key: str, record: Any) -> None:
        """Store a JSON record under ``key`` (``steps/train/<key>.json``), replacing any."""
        self._backend.write(key, (json.dumps(record, indent=2, sort_keys=True) + "\n").encode())

    def get_json(self, key: str) -> Any:
        """The JSON record under ``key``, or None."""
        data = self._backend.read(key)
        return None if data is None else json.loads(data)

    def keys(self, prefix: str) -> list[str]:
        """Keys of the records under ``prefix``, sorted."""
        return self._backend.list(prefix)

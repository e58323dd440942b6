"""What runs, on disk: small JSON records of servers, written atomically, read tolerantly."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlops_kit.process.files import write_json

logger = logging.getLogger(__name__)


def read_record[R](path: Path, kind: type[R]) -> R | None:
    """The dataclass ``kind`` built from the JSON object at ``path``, or None.

    None when the file does not exist; also None, with a warning logged, when it cannot be
    read, is not JSON or does not fit ``kind`` (a corrupt or foreign file is no record).
    """
    return _read(path, lambda data: kind(**data))


def _read[R](path: Path, build: Callable[[dict[str, Any]], R]) -> R | None:
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict):
            raise TypeError(f"expected a JSON object, not {type(data).__name__}")
        return build(data)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError) as exc:
        logger.warning("ignoring unreadable server record %s: %s", path, exc)
        return None


def write_record(path: Path, record: Any) -> None:
    """Write the dataclass ``record`` to ``path`` as JSON, atomically (never half a record)."""
    write_json(path, dataclasses.asdict(record))


def now() -> str:
    """The current UTC time in ISO 8601, to the millisecond: a record's ``started_at``."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class ProcessRecord:
    """A running server: its ids, where it listens and logs, when it started, and any extras.

    On disk a flat JSON object: the fields below plus the ``extra`` entries beside them.
    """

    pid: int
    pgid: int
    """Process group (the pid, for a process from :func:`~mlops_kit.process.spawn`)."""
    host: str
    port: int
    log: str
    """Path of the log its output is appended to."""
    started_at: str = field(default_factory=now)
    extra: Mapping[str, Any] = field(default_factory=dict)
    """Whatever else the owner keeps about it (JSON values)."""

    def to_json(self) -> dict[str, Any]:
        """The flat JSON object stored on disk."""
        data = {
            f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"
        }
        return {**self.extra, **data}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ProcessRecord:
        """The record of a flat JSON object; unknown keys land in ``extra``."""
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        known = {k: v for k, v in data.items() if k in names}
        return cls(**known, extra={k: v for k, v in data.items() if k not in names})

    @classmethod
    def read(cls, path: Path) -> ProcessRecord | None:
        """The record at ``path``; None if missing or unreadable, as :func:`read_record`."""
        return _read(path, cls.from_json)

    def write(self, path: Path) -> None:
        """Write atomically, so a reader never sees half a record."""
        write_json(path, self.to_json())

"""Commits of the GitOps branch: the :class:`Commit` record, its log format and its trailers.

Every change carries trailers (``Model:``, ``Model-Version:``, ``Environment:``, ``Actor:``...);
this module checks and merges them before a commit, and parses them back out of ``git log``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from mlops_kit import display, redact
from mlops_kit.errors import ConfigError

_TRAILER_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")
# Fields NUL-separated, records (in history) led by RS: neither occurs in commit text.
LOG_FORMAT = "%x00".join(["%H", "%an", "%aI", "%s", "%(trailers:only,unfold)"])
RECORD, FIELD = "\x1e", "\x00"
REVERT_COPIES = ("Model", "Environment")
"""Trailers a revert copies from the commit it undoes."""


@dataclass(frozen=True)
class Commit:
    """One commit of the GitOps branch, with its trailers parsed."""

    sha: str
    author: str
    timestamp: datetime
    """Author date, timezone-aware."""
    subject: str
    trailers: dict[str, str] = field(default_factory=dict)

    def as_row(self) -> dict[str, str]:
        """A flat mapping for tables: short sha, time, author, subject, version, request."""
        return {
            "commit": self.sha[:10],
            "at": self.timestamp.strftime("%Y-%m-%d %H:%M:%S %Z").strip(),
            "author": self.author,
            "subject": self.subject,
            "version": self.trailers.get("Model-Version", ""),
            "request": self.trailers.get("Request-Id", ""),
        }

    def _repr_html_(self) -> str:
        return display.table([self.as_row()])


class Commits(list[Commit]):
    """Commits, newest first, shown as a table in a notebook (``git log`` for people)."""

    def _repr_html_(self) -> str:
        if not self:
            return "<p>No commits.</p>"
        return display.table([c.as_row() for c in self])


def parse_commit(record: str) -> Commit:
    """The :class:`Commit` of one ``git log`` record written in :data:`LOG_FORMAT`."""
    sha, author, date, subject, trailer_text = record.strip("\n").split(FIELD)
    trailers = {}
    for line in trailer_text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            trailers[key.strip()] = value.strip()
    return Commit(sha, author, datetime.fromisoformat(date), subject, trailers)


def merge_trailers(
    standard: Mapping[str, str | None], actor: str, extra: Mapping[str, str] | None
) -> dict[str, str]:
    """Standard trailers (None values dropped), ``Actor``, then the caller's, which win."""
    check_actor(actor)
    merged: dict[str, object] = {k: v for k, v in standard.items() if v is not None}
    merged["Actor"] = actor
    merged.update({k: v for k, v in (extra or {}).items() if v is not None})
    out = {}
    for key, value in merged.items():
        text = str(value).strip()
        if not _TRAILER_KEY.fullmatch(key):
            raise ConfigError(f"trailer key {key!r} must be letters, digits and '-'")
        if "\n" in text or not text:
            raise ConfigError(f"trailer {key!r} needs a one-line, non-empty value, got {value!r}")
        out[key] = text
    return out


def check_actor(actor: str) -> None:
    """ConfigError unless ``actor`` is a printable name of at most 64 characters."""
    problem = redact.check_actor(actor)
    if problem is not None:
        raise ConfigError(f"actor {actor[:80]!r} is not a usable name: {problem}")


def identity(actor: str) -> list[str]:
    """Author and committer for one command, leaving every git config file alone."""
    name = re.sub(r"[<>\n]", "", actor).strip()
    email = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "unknown"
    return ["-c", f"user.name={name}", "-c", f"user.email={email}@mlops-kit.local"]


__all__ = ["Commit", "check_actor", "identity", "merge_trailers", "parse_commit"]

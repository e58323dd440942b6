"""Recognise values that look like credentials, so they are refused before any output holds them.

Parameters land in executed notebooks, HTML reports and the GitOps repository, which are all
shared: a token there is a leaked token. Pure: no I/O.
"""

from __future__ import annotations

import re

_NAMES = re.compile(r"(?i)(passw(or)?d|secret|token|api[_-]?key|credential|private[_-]?key)")
_VALUES = (
    ("a word like secret, token or password", _NAMES),
    ("an AWS access key id", re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("a GitHub token", re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}\b")),
    ("a Slack token", re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}")),
    ("a private key", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")),
    ("a JSON web token", re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.")),
)


def secret_reason(name: str, value: object) -> str | None:
    """Why ``name=value`` looks like a credential, or None when it does not."""
    if _NAMES.search(name):
        return f"its name {name!r} says it holds a credential"
    if isinstance(value, str):
        for what, pattern in _VALUES:
            if pattern.search(value):
                return f"its value looks like {what}"
    return None


def check_actor(actor: str) -> str | None:
    """Why ``actor`` is no usable name (control characters, angle brackets, too long), or None."""
    if not actor.strip():
        return "it is empty"
    if len(actor) > 64:
        return f"it is {len(actor)} characters long (at most 64)"
    if any(not ch.isprintable() or ch in "<>" for ch in actor):
        return "it holds control characters or angle brackets"
    return None

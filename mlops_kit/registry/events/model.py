"""What alias events are: the event record, the receiver's counters, the watched aliases."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

ALIASES = ("staging", "production")

Action = Literal["set", "deleted"]
Origin = Literal["webhook", "poll"]


@dataclass(frozen=True)
class AliasEvent:
    """An alias of a registered model now points at another version, or at none."""

    model_name: str
    alias: str
    version: str | None
    """The version the alias points at now; None when it was deleted."""
    action: Action
    received_at: datetime
    """When the change reached us: the webhook's arrival, or the poll that saw it (UTC)."""
    source: Origin
    delivery_id: str | None = None
    """MLflow's ``X-MLflow-Delivery-Id`` for webhook events; None for polled ones."""
    previous: str | None = None
    """The version the alias pointed at before, as this source last saw it."""


@dataclass
class ReceiverStats:
    """Counts of webhook deliveries by outcome, for logs and tests."""

    received: int = 0
    accepted: int = 0
    ignored: int = 0
    """Valid deliveries about another model, alias or event type."""
    duplicates: int = 0
    rejected: int = 0
    """Refused: bad or missing signature (401), stale timestamp or malformed request (400)."""


@dataclass(frozen=True)
class Hint:
    """A delivery's word that an alias moved: the watching thread re-reads it."""

    alias: str
    version: str | None
    delivery_id: str
    received_at: datetime


__all__ = ["ALIASES", "Action", "AliasEvent", "Hint", "Origin", "ReceiverStats"]

"""Alias events by polling: works against any registry, SQLite or server."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlops_kit.registry.events.model import ALIASES, Origin
from mlops_kit.registry.events.source import AliasEventSource

if TYPE_CHECKING:
    from mlops_kit.project import Project


class PollSource(AliasEventSource):
    """Alias events by reading the model's aliases every ``interval`` seconds.

    Works against any registry, SQLite or server. One ``get_registered_model`` call per
    interval covers every watched alias. A change is seen within about ``interval`` seconds;
    a read that fails is logged once and retried, never reported as a deleted alias.
    """

    kind: Origin = "poll"

    def __init__(
        self,
        project: Project,
        model_name: str | None = None,
        aliases: tuple[str, ...] = ALIASES,
        interval: float = 1.0,
    ) -> None:
        super().__init__(project, model_name, aliases, interval=interval)


__all__ = ["PollSource"]

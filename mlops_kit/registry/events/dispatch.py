"""Pick the alias event source a project's registry allows: webhooks, else polling."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from mlops_kit.errors import RegistryError
from mlops_kit.registry.events.model import ALIASES
from mlops_kit.registry.events.poll import PollSource
from mlops_kit.registry.events.registration import is_http, redact, webhook_unavailable
from mlops_kit.registry.events.source import AliasEventSource
from mlops_kit.registry.events.webhook import WebhookSource

if TYPE_CHECKING:
    from mlops_kit.project import Project

logger = logging.getLogger(__name__)


def alias_events(
    project: Project,
    model_name: str | None = None,
    aliases: tuple[str, ...] = ALIASES,
    *,
    interval: float = 1.0,
    **webhook_options: Any,
) -> AliasEventSource:
    """A started alias event source: webhooks where the registry offers them, else polling.

    Webhooks are used when the tracking URI is http(s), the server answers the webhook API
    (MLflow >= 3.3 with a SQL backend) and accepts our receiver's URL (a loopback receiver
    needs the server started with :data:`mlops_kit.registry.server.WEBHOOK_ENV`). Otherwise it
    polls every ``interval`` seconds. The choice is logged. Close the source (or use it in a
    ``with`` block) like a file.
    """
    if is_http(project.tracking_uri):
        source = WebhookSource(project, model_name, aliases, **webhook_options)
        try:
            return source.start()  # probes the webhook API, registers, self-tests
        except RegistryError as exc:
            reason = str(exc)
    else:
        reason = f"registry {redact(project.tracking_uri)} is not a server"
    logger.info("alias events by polling every %s s: %s", interval, reason)
    return PollSource(project, model_name, aliases, interval=interval).start()


def supports_webhooks(project: Project) -> bool:
    """Whether the project's registry is a server that answers the webhook API."""
    return webhook_unavailable(project) is None


__all__ = ["alias_events", "supports_webhooks"]

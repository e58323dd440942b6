"""Alias events pushed by MLflow registry webhooks to a receiver of our own on loopback.

The source registers a webhook on the registry server, checks every delivery the receiver
(:mod:`~mlops_kit.registry.events.receiver`) hands it, and re-reads the alias a valid one
names; ``close`` deletes the webhook.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING

from mlops_kit.errors import ConfigError, RegistryError
from mlops_kit.registry.events.model import ALIASES, Hint, Origin, ReceiverStats
from mlops_kit.registry.events.receiver import (
    DELIVERY_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    TIMESTAMP_TOLERANCE,
    WEBHOOK_PATH,
    Receiver,
    verify_signature,
)
from mlops_kit.registry.events.registration import (
    WEBHOOK_EVENTS,
    is_http,
    prune_stale_webhooks,
    redact,
    url_host,
    webhook_name,
    webhook_refusal,
    webhook_unavailable,
)
from mlops_kit.registry.events.source import AliasEventSource

if TYPE_CHECKING:
    from mlops_kit.project import Project

logger = logging.getLogger(__name__)


class WebhookSource(AliasEventSource):
    """Alias events pushed by MLflow registry webhooks to a receiver on loopback.

    ``start`` binds an HTTP receiver on ``host:port`` (``port=0``: a free one) and registers a
    webhook for alias creation and deletion on the project's registry server, whose tracking
    URI must be http(s) (ConfigError otherwise). Each delivery must carry a valid
    ``X-MLflow-Signature`` (HMAC-SHA256 with ``secret``; 401 otherwise) and a timestamp
    within :data:`TIMESTAMP_TOLERANCE` (400 otherwise); deliveries are deduplicated by
    delivery id and filtered to ``model_name`` and ``aliases``. ``close`` deletes the webhook.

    ``secret`` defaults to a fresh random token; it is never logged. ``callback_url`` is the
    address the registry server should post to, when it cannot reach ``host:port`` directly.
    ``reconcile_interval`` re-reads the aliases as a safety net (None: never). With ``verify``
    (the default) ``start`` has the server send MLflow's test delivery and fails with
    RegistryError unless it arrives signed with ``secret``: a webhook that cannot reach its
    receiver is found at once, not at the next alias move.
    """

    kind: Origin = "webhook"

    def __init__(
        self,
        project: Project,
        model_name: str | None = None,
        aliases: tuple[str, ...] = ALIASES,
        host: str = "127.0.0.1",
        port: int = 0,
        secret: str | None = None,
        *,
        callback_url: str | None = None,
        reconcile_interval: float | None = 30.0,
        tolerance: float = TIMESTAMP_TOLERANCE,
        verify: bool = True,
    ) -> None:
        super().__init__(project, model_name, aliases, interval=reconcile_interval)
        if not is_http(project.tracking_uri):
            raise ConfigError(
                "registry webhooks need a registry server (an http(s) tracking URI, e.g. "
                "registry_server.ensure_running(project)), not "
                f"{redact(project.tracking_uri)!r}; alias_events() falls back to polling"
            )
        self.host = host
        self.port = port
        self._secret = secret or secrets.token_urlsafe(32)
        self._callback_url = callback_url
        self.tolerance = tolerance
        self.verify = verify
        self.stats = ReceiverStats()
        self.webhook_id: str | None = None
        self._server: Receiver | None = None
        self._server_thread: threading.Thread | None = None
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._seen_lock = threading.Lock()

    def __repr__(self) -> str:  # keeps the secret out of reprs and logs
        return f"WebhookSource(model_name={self.model_name!r}, url={self.url!r})"

    @property
    def url(self) -> str | None:
        """The URL the registry server posts deliveries to (None before start)."""
        if self._callback_url:
            return self._callback_url
        if not self.port:
            return None
        return f"http://{url_host(self.host)}:{self.port}{WEBHOOK_PATH}"

    def _describe(self) -> str:
        every = f"re-read every {self.interval} s" if self.interval else "no re-read"
        return f"webhook {self.webhook_id} -> {self.url}, {every}"

    def _preflight(self) -> None:
        unavailable = webhook_unavailable(self.project)
        if unavailable is not None:
            raise RegistryError(unavailable)

    def _open(self) -> None:
        from mlflow.exceptions import MlflowException

        self._server = Receiver((self.host, self.port), self)
        self.port = self._server.server_address[1]
        self._server_thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="webhook-receiver",
            daemon=True,
        )
        self._server_thread.start()
        assert self._client is not None
        try:
            prune_stale_webhooks(self.project)
            webhook = self._client.create_webhook(
                name=webhook_name(self.model_name),
                url=str(self.url),
                events=[*WEBHOOK_EVENTS],
                description=f"mlops-kit alias events for {self.model_name}",
                secret=self._secret,
            )
        except MlflowException as exc:
            self._stop_receiver()
            raise RegistryError(webhook_refusal(self._uri(), exc)) from exc
        except BaseException:
            self._stop_receiver()
            raise
        self.webhook_id = webhook.webhook_id
        if self.verify:
            self._self_test()

    def _self_test(self) -> None:
        """Have the server send its example delivery: proves it reaches us and signs right."""
        assert self._client is not None and self.webhook_id is not None
        before = self.stats.rejected
        try:
            result = self._client.test_webhook(self.webhook_id)
            problem = None if result.success else (result.error_message or result.response_body)
        except Exception as exc:
            problem = str(exc)
        if problem is None and self.stats.rejected > before:
            problem = "the delivery was refused by the receiver"
        if problem is not None:
            self._release()
            raise RegistryError(
                f"registry {redact(self._uri())} could not deliver a test webhook to {self.url}:"
                f" {problem}"
            )

    def _release(self) -> None:
        try:
            if self.webhook_id is not None and self._client is not None:
                try:
                    self._client.delete_webhook(self.webhook_id)
                except Exception as exc:
                    logger.warning("could not delete webhook %s: %s", self.webhook_id, exc)
        finally:
            self._stop_receiver()

    def _stop_receiver(self) -> None:
        server, thread = self._server, self._server_thread
        self._server = self._server_thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    # -- called from receiver threads ----------------------------------------------------

    def _deliver(
        self, headers: Mapping[str, str], body: bytes, received_at: datetime
    ) -> tuple[int, str]:
        """Check one delivery and hand it to the watching thread; returns (status, reason)."""
        self._count("received")
        delivery_id = headers.get(DELIVERY_ID_HEADER, "")
        timestamp = headers.get(TIMESTAMP_HEADER, "")
        signature = headers.get(SIGNATURE_HEADER, "")
        if not delivery_id or not timestamp:
            return self._reject(400, "missing delivery id or timestamp")
        if not signature or not verify_signature(
            self._secret, delivery_id, timestamp, body, signature
        ):
            return self._reject(401, "bad signature")
        try:
            sent = int(timestamp)
        except ValueError:
            return self._reject(400, "malformed timestamp")
        if abs(time.time() - sent) > self.tolerance:
            return self._reject(400, "timestamp outside the tolerance")
        try:
            payload = json.loads(body)
            entity, action, data = payload["entity"], payload["action"], payload["data"]
            name, alias = data["name"], data["alias"]
        except (ValueError, KeyError, TypeError):
            return self._reject(400, "malformed payload")
        with self._seen_lock:
            if delivery_id in self._seen:
                self.stats.duplicates += 1
                return 200, "duplicate"
            self._seen[delivery_id] = None
            if len(self._seen) > 4096:
                self._seen.popitem(last=False)
        if (
            entity != "model_version_alias"
            or action not in ("created", "deleted")
            or name != self.model_name
            or alias not in self.aliases
        ):
            self._count("ignored")
            return 200, "ignored"
        version = data.get("version") if action == "created" else None
        self._count("accepted")
        self._hints.put(
            Hint(alias, None if version is None else str(version), delivery_id, received_at)
        )
        return 200, "accepted"

    def _count(self, outcome: str) -> None:
        with self._seen_lock:
            setattr(self.stats, outcome, getattr(self.stats, outcome) + 1)

    def _reject(self, status: int, reason: str) -> tuple[int, str]:
        self._count("rejected")
        logger.warning("rejected a webhook delivery: %s (%s)", reason, status)
        return status, reason


__all__ = ["WebhookSource"]

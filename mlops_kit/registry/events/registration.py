"""The registry server's side of webhooks: whether it offers them, our webhooks' names, pruning.

Also the URL helpers the sources share: is a tracking URI a server, and its text with the
password redacted.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import secrets
import socket
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from mlops_kit.registry.database import redact

if TYPE_CHECKING:
    from mlops_kit.project import Project

logger = logging.getLogger(__name__)

WEBHOOK_EVENTS: tuple[Any, ...] = ("model_version_alias.created", "model_version_alias.deleted")
WEBHOOK_NAME_PREFIX = "mlops-kit-"


def prune_stale_webhooks(project: Project, timeout: float = 0.5) -> list[str]:
    """Delete this toolkit's loopback webhooks whose receiver no longer listens; returns ids.

    A source that died without closing leaves its webhook behind; MLflow would keep trying
    (and retrying) to deliver to it. Only a registry server on loopback is pruned, and only
    webhooks aimed at loopback: elsewhere we cannot tell a dead receiver from one we cannot
    reach.
    """
    if not _is_loopback(urlparse(project.tracking_uri).hostname):
        return []
    client = project.client
    pruned = []
    token: str | None = None
    while True:
        page = client.list_webhooks(max_results=100, page_token=token)
        for hook in page:
            if (
                hook.name.startswith(WEBHOOK_NAME_PREFIX)
                and _is_loopback(urlparse(hook.url).hostname)
                and not _listening(hook.url, timeout)
            ):
                with contextlib.suppress(Exception):
                    client.delete_webhook(hook.webhook_id)
                    pruned.append(hook.webhook_id)
        token = page.token
        if not token:
            break
    if pruned:
        logger.info("deleted %d webhook(s) whose receiver was gone", len(pruned))
    return pruned


def is_http(uri: str) -> bool:
    """Whether ``uri`` is an http(s) URL: a registry server, not a database or a directory."""
    return urlparse(uri).scheme in ("http", "https")


def url_host(host: str) -> str:
    """``host`` as written in a URL: IPv6 addresses in brackets."""
    return f"[{host}]" if ":" in host else host


def webhook_name(model_name: str) -> str:
    """A fresh name for one of our webhooks on ``model_name``, valid for MLflow."""
    # MLflow: letters, digits, ".", "_", "-"; starts and ends alphanumeric; under 63 chars.
    name = f"{WEBHOOK_NAME_PREFIX}{secrets.token_hex(4)}-{model_name}"[:62]
    return name.rstrip("-._")


def webhook_unavailable(project: Project, timeout: float = 10.0) -> str | None:
    """Why webhooks cannot be used, or None when the registry server offers them.

    One ``GET /api/2.0/mlflow/webhooks`` without retries: MLflow's client retries a 5xx for
    about two minutes, and a server whose stored webhook secrets it cannot decrypt answers 500.
    """
    from mlflow.utils.credentials import get_default_host_creds
    from mlflow.utils.rest_utils import http_request

    uri = project.tracking_uri
    where = f"registry {redact(uri)}"
    if not is_http(uri):
        return f"{where} is not a server (webhooks need `mlflow server`)"
    try:
        response = http_request(
            get_default_host_creds(uri),
            "/api/2.0/mlflow/webhooks",
            "GET",
            max_retries=0,
            timeout=timeout,
            raise_on_status=False,
            params={"max_results": 1},
        )
    except Exception as exc:
        return f"{where} did not answer: {exc}"
    if response.status_code == 200:
        return None
    if response.status_code == 404:
        return f"{where} has no webhook API (needs MLflow >= 3.3 with a SQL backend)"
    if response.status_code == 500:
        return (
            f"{where} fails to list its webhooks (500): typically webhooks stored by a server "
            "with another MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY, which it cannot decrypt"
        )
    return f"{where} answered the webhook API with HTTP {response.status_code}"


def webhook_refusal(uri: str, exc: Exception) -> str:
    """The message for a server that refused to create our webhook, with the likely fix."""
    message = f"registry {redact(uri)} refused the webhook: {exc}"
    text = str(exc).lower()
    if "scheme" in text or "public" in text or "private" in text:
        message += (
            " (a receiver on loopback needs the server started with "
            "MLFLOW_WEBHOOK_ALLOWED_SCHEMES=http,https and MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS=true,"
            " as mlops_kit.registry.server does; not for a shared server)"
        )
    return message


def _is_loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _listening(url: str, timeout: float) -> bool:
    parsed = urlparse(url)
    if not parsed.hostname:
        return False
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


__all__ = ["WEBHOOK_EVENTS", "prune_stale_webhooks", "webhook_unavailable"]

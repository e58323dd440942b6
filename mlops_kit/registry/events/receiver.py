"""The loopback HTTP receiver of webhook deliveries, and MLflow's delivery signature.

The receiver only reads a bounded request and hands its headers and body to the
:class:`~mlops_kit.registry.events.webhook.WebhookSource` that owns it, which decides.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import socket
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlops_kit.registry.events.webhook import WebhookSource

logger = logging.getLogger(__name__)

WEBHOOK_PATH = "/mlflow/webhook"
SIGNATURE_HEADER = "X-MLflow-Signature"
TIMESTAMP_HEADER = "X-MLflow-Timestamp"
DELIVERY_ID_HEADER = "X-MLflow-Delivery-Id"
TIMESTAMP_TOLERANCE = 300.0
"""Seconds a delivery's timestamp may differ from our clock (the Standard Webhooks default)."""
MAX_BODY = 64 * 1024


def sign(secret: str, delivery_id: str, timestamp: str, body: bytes) -> str:
    """MLflow's signature of a delivery: ``v1,`` + base64 HMAC-SHA256 of ``id.timestamp.body``."""
    content = f"{delivery_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify_signature(
    secret: str, delivery_id: str, timestamp: str, body: bytes, header: str
) -> bool:
    """Whether ``header`` (one or more space-separated ``v1,<sig>``) signs the delivery."""
    expected = sign(secret, delivery_id, timestamp, body).encode()
    return any(hmac.compare_digest(expected, candidate.encode()) for candidate in header.split())


class Receiver(ThreadingHTTPServer):
    """An HTTP server on ``address`` passing each delivery to ``source``; IPv4 or IPv6."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], source: WebhookSource) -> None:
        self.source = source
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.address_family = family
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: Receiver
    timeout = 10  # a client that never finishes its request does not hold a thread forever
    server_version = "mlops-kit-webhooks"
    sys_version = ""

    def do_POST(self) -> None:
        received_at = datetime.now(UTC)
        if self.path != WEBHOOK_PATH:
            self._answer(404, "not found")
            return
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self._answer(411, "length required")
            return
        if length < 0 or length > MAX_BODY:
            self._answer(413, "payload too large")
            return
        body = self.rfile.read(length)
        headers = {key: self.headers.get(key, "") for key in _HEADERS}
        status, reason = self.server.source._deliver(headers, body, received_at)
        self._answer(status, reason)

    def do_GET(self) -> None:
        self._answer(405, "POST only")

    def _answer(self, status: int, reason: str) -> None:
        body = json.dumps({"status": reason}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("webhook receiver: " + format, *args)


_HEADERS = (DELIVERY_ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER)


__all__ = ["Receiver", "sign", "verify_signature"]

"""HTTP/1.1 over a bare socket, for what httpx will not send: broken framing, CR/LF in headers,
requests sent by halves, thousands of stalled connections."""

from __future__ import annotations

import json
import socket
import time
from dataclasses import dataclass
from typing import Any

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Answer:
    """One HTTP response as read off the wire."""

    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float
    """From the last byte sent to the whole response read."""

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def closes(self) -> bool:
        return self.headers.get("connection", "").lower() == "close"


class Connection:
    """One client connection, reading responses off it one at a time."""

    def __init__(self, port: int, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection((HOST, port), timeout=timeout)
        self._buffer = b""

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def answer(self) -> Answer | None:
        """The next response; None if the server closed the connection without one."""
        began = time.monotonic()
        while b"\r\n\r\n" not in self._buffer:
            if not self._fill():
                return None
        head, _, self._buffer = self._buffer.partition(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        while len(self._buffer) < length and self._fill():
            pass
        body, self._buffer = self._buffer[:length], self._buffer[length:]
        return Answer(int(status_line.split()[1]), headers, body, time.monotonic() - began)

    def closed_by_peer(self, within: float) -> bool:
        """Whether the server closes the connection within ``within`` s, sending nothing more."""
        self.sock.settimeout(within)
        try:
            return not self._buffer and self.sock.recv(1) == b""
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False

    def _fill(self) -> bool:
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        self._buffer += chunk
        return bool(chunk)


def exchange(port: int, data: bytes, timeout: float = 10.0) -> Answer | None:
    """Send ``data`` on a new connection and read one response."""
    with Connection(port, timeout) as connection:
        connection.send(data)
        return connection.answer()


def request(
    method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> bytes:
    """A well-framed HTTP/1.1 request."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}"]
    fields = {"content-type": "application/json", **(headers or {})}
    if body and "transfer-encoding" not in {k.lower() for k in fields}:
        fields["content-length"] = str(len(body))
    lines += [f"{name}: {value}" for name, value in fields.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body

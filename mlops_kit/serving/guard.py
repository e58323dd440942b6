"""The HTTP guard in front of MLServer's REST app: limits, and a JSON reason for every refusal.

uvicorn and FastAPI as MLServer runs them take a request body of any size and wait forever for
a client that stops halfway through its headers or body; they answer unparsable HTTP in plain
text, and FastAPI's own error handler echoes the whole offending input (and recurses into it:
JSON nested 1,000 deep crashes it into a 500). A 500 also ends the keep-alive connection, so a
pooled client's next request fails with a reset. Three pieces keep every refusal a 4xx with a
body ``{"error": "..."}``:

- :class:`GuardedHttpProtocol`, uvicorn's httptools protocol with a clock and a size limit: a
  request line and headers longer than ``max_header_bytes`` get 431; a request not fully
  received ``read_timeout`` seconds after its first byte (or after the connection opened) gets
  408; both then close the connection, which cannot carry another request. A connection that
  opened and sent nothing is closed silently.
- :class:`Guard`, an ASGI app around MLServer's: bodies over ``max_request_bytes`` get 413
  (before a byte of them is read when ``Content-Length`` says so; the rest is discarded and the
  connection kept), bodies that are not JSON 415, JSON nested deeper than
  :data:`MAX_JSON_DEPTH` 400; gzip bodies are decoded within the same size limit. Response
  header values that cannot go on the wire (CR, LF) are dropped instead of breaking the
  connection.
- With a control token, :class:`Guard` also keeps MLServer's model-repository API (load,
  unload) to whoever holds the token: the toolkit.
- :func:`install_handlers`: FastAPI's validation errors and Starlette's 404 and 405 as
  ``{"error": ...}`` naming the field or method, without echoing the input (MLServer's own
  errors keep their answer, their message bounded to 1,000 characters); an unexpected
  exception as a JSON 500 with ``Connection: close``, so a pooled client never reuses a
  connection the server is about to drop.

:mod:`mlops_kit.serving.server` puts them in front of MLServer; the local target starts every
server through it.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
import sys
import zlib
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, ClassVar

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from mlserver.errors import MLServerError
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = [
    "MAX_JSON_DEPTH",
    "Guard",
    "GuardedHttpProtocol",
    "Limits",
    "install_handlers",
    "json_depth",
    "replay",
]

logger = logging.getLogger(__name__)

REPOSITORY_PATH = "/v2/repository"
"""MLServer's model-repository API: what a control token guards."""

MAX_JSON_DEPTH = 64
"""Deepest nesting of arrays and objects in a request body. A V2 request needs about 35 at most
(a tensor of 32 dimensions inside ``inputs``); Python code walking deeper JSON recursively
runs out of stack at about 1,000."""


@dataclass(frozen=True)
class Limits:
    """How much, and how slowly, a client may send (``serving`` settings of the same names)."""

    max_request_bytes: int = 16 * 2**20
    max_header_bytes: int = 32 * 2**10
    read_timeout: float = 10.0


def _error_body(message: str) -> bytes:
    return json.dumps({"error": message}).encode()


# -- the connection ----------------------------------------------------------------------------


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol that bounds each request's headers and reading time.

    :meth:`with_limits` makes the class uvicorn's ``Config(http=...)`` takes.
    """

    limits: ClassVar[Limits] = Limits()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._in_head = True  # between two requests, or reading a request's line and headers
        self._begun = False  # a request's first byte came, its last has not
        self._head_bytes = 0  # bytes received while in the head: bounds what httptools buffers
        self._head_size = 0  # the request line and headers as parsed
        self._refusal: tuple[int, str] | None = None

    @classmethod
    def with_limits(cls, limits: Limits) -> type[GuardedHttpProtocol]:
        """A subclass enforcing ``limits``."""
        return type(cls.__name__, (cls,), {"limits": limits})

    # -- asyncio.Protocol and httptools callbacks -------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        # Headers still incomplete after this many bytes: a slow stream of one endless header.
        too_many = self._head_bytes > self.limits.max_header_bytes
        if self._in_head and too_many and not self.transport.is_closing():
            self._refuse(*self._head_too_large())

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._begun = True
        if self._deadline is None:
            self._arm()

    def on_url(self, url: bytes) -> None:
        self._head_size += len(url)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_size += len(name) + len(value) + 4
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        if self._head_size > self.limits.max_header_bytes:
            # Raising makes httptools stop and uvicorn call send_400_response.
            self._refusal = self._head_too_large()
            raise ValueError(self._refusal[1])
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._disarm()
        self._in_head = True
        self._begun = False
        self._head_bytes = self._head_size = 0

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to bytes httptools refused, as JSON (called in its ``except``)."""
        if self._refusal is None:
            error = sys.exception()
            cause = error.__context__ if error is not None else None
            reason = f": {_part(cause or error)}" if (cause or error) else ""
            self._refusal = (400, f"the request is not valid HTTP/1.1{reason}")
        self._refuse(*self._refusal)

    def _head_too_large(self) -> tuple[int, str]:
        return 431, f"the request line and headers exceed {self.limits.max_header_bytes} bytes"

    # -- the clock ---------------------------------------------------------------------------

    def _arm(self) -> None:
        self._deadline = self.loop.call_later(self.limits.read_timeout, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if self.flow.read_paused:  # uvicorn stopped reading (a pipelined request waits its turn)
            self._arm()
            return
        if not self._begun:  # opened, then sent nothing
            self.transport.close()
            return
        cycle = None if self._in_head else self.cycle
        if cycle is not None and cycle.response_started:
            self.transport.close()  # answered already (413), but the body never ended
            return
        if cycle is not None:
            # The app waits for the rest of the body: it hears of a disconnect, and nothing it
            # sends reaches the wire.
            cycle.disconnected = True
            cycle.message_event.set()
        seconds = f"{self.limits.read_timeout:g}"
        self._refuse(408, f"the request was not received in full within {seconds} s")

    def _refuse(self, status: int, message: str) -> None:
        """Answer ``status`` with ``message`` and close: the stream is past resynchronising."""
        body = _error_body(message)
        head = (
            f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n"
            "content-type: application/json\r\n"
            f"content-length: {len(body)}\r\n"
            "connection: close\r\n\r\n"
        )
        self.transport.write(head.encode("ascii") + body)
        self.transport.close()


# -- the request -------------------------------------------------------------------------------

_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BAD_HEADER_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")


def json_depth(body: bytes, limit: int = MAX_JSON_DEPTH) -> int:
    """How deep arrays and objects nest in JSON ``body``, or a bound of it that is <= ``limit``.

    Counts brackets outside strings, so it needs no parse; a body with at most ``limit``
    brackets (nearly every request) costs two ``bytes.count``. For invalid JSON the figure is
    a guess, which the parser then refuses anyway.
    """
    brackets = body.count(b"[") + body.count(b"{")
    if brackets <= limit:
        return brackets
    codes = np.frombuffer(_JSON_STRING.sub(b'""', body), np.uint8)
    opens = (codes == ord("[")) | (codes == ord("{"))
    closes = (codes == ord("]")) | (codes == ord("}"))
    return int(np.cumsum(opens.astype(np.int32) - closes).max(initial=0))


_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def _is_json(content_type: bytes) -> bool:
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or (
        media.startswith(b"application/") and media.endswith(b"+json")
    )


def _shown(value: bytes) -> str:
    return repr(_part(value.decode("latin-1")))


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Guard:
    """ASGI app that hands MLServer's app only bodies within the limits, read in full.

    With a ``control_token``, MLServer's model-repository API (``/v2/repository/...``: load,
    unload, index) answers 401 unless the request carries ``Authorization: Bearer <token>``:
    only the toolkit, which holds the token, may swap or unload what an environment serves.
    """

    def __init__(self, app: ASGIApp, limits: Limits, control_token: str | None = None) -> None:
        self.app = app
        self.limits = limits
        self._authorization = f"Bearer {control_token}".encode() if control_token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self._authorization and scope["path"].startswith(REPOSITORY_PATH):
            given = next((v for k, v in scope["headers"] if k == b"authorization"), b"")
            if not hmac.compare_digest(given, self._authorization):
                await _answer(send, 401, "the model repository API is the toolkit's alone")
                return
        try:
            gzipped = self._check_headers(scope)
        except _Refused as refused:
            # A client that waits for "100 Continue" never sends the body: the connection
            # cannot carry another request.
            waits = any(
                k == b"expect" and v.lower() == b"100-continue" for k, v in scope["headers"]
            )
            await _answer(send, refused.status, refused.message, close=waits)
            return
        try:
            body = await self._read_body(receive)
            if body is None:
                return  # the client went away (or the protocol gave up waiting for it)
            if gzipped:
                # Decoded here within the limit; MLServer would decode it again, unbounded.
                body = self._gunzip(body)
                headers = [(k, v) for k, v in scope["headers"] if k != b"content-encoding"]
                scope = {**scope, "headers": headers}
            depth = json_depth(body)
            if depth > MAX_JSON_DEPTH:
                raise _Refused(400, f"the body nests {depth} levels deep; at most {MAX_JSON_DEPTH}")
        except _Refused as refused:
            await _answer(send, refused.status, refused.message)
            return

        async def checked_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.get("headers", ())
                if _BAD_HEADER_VALUE.search(b" ".join([value for _, value in headers])):
                    message = {**message, "headers": _without_bad_values(headers)}
            await send(message)

        await self.app(scope, replay(body, receive), checked_send)

    def _check_headers(self, scope: Scope) -> bool:
        """Refuse what the headers alone condemn; whether the body is gzip."""
        length = content_type = encoding = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                length = value
            elif name == b"content-type":
                content_type = value
            elif name == b"content-encoding":
                encoding = value.strip().lower()
        if length is not None and length.isdigit() and int(length) > self.limits.max_request_bytes:
            raise self._too_large()
        json_body = content_type is None or _is_json(content_type)
        if not json_body and scope["method"] in _BODY_METHODS:
            assert content_type is not None
            raise _Refused(415, f"the body must be application/json, not {_shown(content_type)}")
        if encoding is not None and encoding not in (b"gzip", b"identity"):
            raise _Refused(415, f"content encoding {_shown(encoding)} is not accepted: use gzip")
        return encoding == b"gzip"

    async def _read_body(self, receive: Receive) -> bytes | None:
        chunks = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limits.max_request_bytes:
                raise self._too_large()
            chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _gunzip(self, body: bytes) -> bytes:
        """``body`` decoded when it is gzip, within the size limit (no gzip bombs)."""
        if not body:
            return body
        decoder = zlib.decompressobj(wbits=31)
        try:
            data = decoder.decompress(body, self.limits.max_request_bytes)
        except zlib.error as exc:
            raise _Refused(400, f"the body is not valid gzip: {exc}") from None
        if decoder.unconsumed_tail:
            raise self._too_large(decoded=True)
        if not decoder.eof:
            raise _Refused(400, "the gzip body ends before its end")
        return data

    def _too_large(self, decoded: bool = False) -> _Refused:
        what = "decoded body" if decoded else "body"
        return _Refused(413, f"the {what} exceeds {self.limits.max_request_bytes} bytes")


def replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands over ``body``, read in full already, then defers to ``receive``
    (only a disconnect is left to hear)."""
    delivered = False

    async def replayed() -> Message:
        nonlocal delivered
        if delivered:
            return await receive()
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replayed


def _without_bad_values(headers: Any) -> list[tuple[bytes, bytes]]:
    kept = []
    for name, value in headers:
        if _BAD_HEADER_VALUE.search(value):
            logger.warning("dropped response header %s: its value has control characters", name)
        else:
            kept.append((name, value))
    return kept


async def _answer(send: Send, status: int, message: str, close: bool = False) -> None:
    body = _error_body(message)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


# -- FastAPI's own errors ----------------------------------------------------------------------


def _part(value: Any, limit: int = 60) -> str:
    """``value`` as text for a message, cut short: messages never echo much of a request."""
    text = str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def validation_message(errors: list[dict[str, Any]]) -> str:
    """One line naming each field FastAPI refused and why, without the values themselves."""
    parts = []
    for error in errors[:5]:
        loc = [_part(p) for p in error.get("loc", ())]
        if error.get("type") == "json_invalid":
            reason = (error.get("ctx") or {}).get("error", "")
            at = f" at position {loc[1]}" if len(loc) > 1 else ""
            parts.append(f"the body is not valid JSON{at}: {_part(reason)}")
        else:
            where = ".".join(loc[1:] if loc[:1] == ["body"] else loc) or "the body"
            if error.get("type") == "missing":
                parts.append(f"{where} is missing")
            else:
                parts.append(f"{where}: {_part(error.get('msg', 'invalid'), 120)}")
    if len(errors) > 5:
        parts.append(f"and {len(errors) - 5} more")
    return "invalid inference request: " + "; ".join(parts)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return JSONResponse({"error": validation_message(list(exc.errors()))}, status_code=422)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    path = _part(request.url.path)
    method = _part(request.method)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        allowed = headers.get("Allow", "")
        message = f"method {method} is not allowed on {path}; use {allowed}"
    elif exc.status_code == 404:
        message = f"no such endpoint: {method} {path}"
    else:
        message = _part(exc.detail)
    return JSONResponse({"error": message}, status_code=exc.status_code, headers=headers)


async def _mlserver_error(request: Request, exc: Exception) -> JSONResponse:
    """MLServer's own answer to its errors, its message cut short (it may quote the path)."""
    assert isinstance(exc, MLServerError)
    return JSONResponse({"error": _part(exc, 1000)}, status_code=exc.status_code)


async def _server_error(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(
        {"error": f"internal server error ({type(exc).__name__}); see the server log"},
        status_code=500,
        headers={"Connection": "close"},
    )


def install_handlers(app: FastAPI) -> None:
    """Make ``app`` answer validation, routing and unexpected errors as ``{"error": ...}``."""
    app.add_exception_handler(MLServerError, _mlserver_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _server_error)

"""The HTTP guard on a real uvicorn server with a small FastAPI app: limits and JSON refusals."""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from mlops_kit.serving.guard import (
    MAX_JSON_DEPTH,
    Guard,
    GuardedHttpProtocol,
    Limits,
    install_handlers,
    json_depth,
    validation_message,
)
from tests.serving.rawhttp import Connection, exchange, request

LIMITS = Limits(max_request_bytes=64 * 1024, max_header_bytes=4096, read_timeout=0.5)


class Typed(BaseModel):
    name: str
    size: int


TOKEN = "the-toolkits-control-token"  # noqa: S105 - a test value


def make_app() -> FastAPI:
    app = FastAPI()

    @app.post("/echo")
    async def echo(request: Request) -> dict[str, Any]:
        body = await request.body()
        return {"bytes": len(body), "encoding": request.headers.get("content-encoding")}

    @app.post("/typed")
    async def typed(body: Typed) -> dict[str, Any]:
        return {"name": body.name}

    @app.get("/header")
    async def header(value: str) -> JSONResponse:
        return JSONResponse({"ok": True}, headers={"x-echo": value})

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    @app.post("/v2/repository/models/{name}/unload")
    async def unload(name: str) -> dict[str, Any]:
        return {"unloaded": name}

    install_handlers(app)
    return app


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    """A uvicorn server on loopback with the guard, in a thread of this process."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        Guard(make_app(), LIMITS, TOKEN),
        http=GuardedHttpProtocol.with_limits(LIMITS),
        lifespan="off",
        log_level="critical",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])))
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.started
    yield sock.getsockname()[1]
    server.should_exit = True
    thread.join(10)
    sock.close()


@pytest.fixture
def client(port: int) -> Iterator[httpx.Client]:
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=5) as client:
        yield client


def refused(response: httpx.Response, status: int, fragment: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert fragment in response.json()["error"]


# -- pure functions --------------------------------------------------------------------------


def test_json_depth_counts_brackets_outside_strings() -> None:
    assert json_depth(b'{"a": [1, 2]}') == 2
    deep = b"[" * 100 + b"]" * 100
    assert json_depth(deep) == 100
    many_flat = b"[" + b"[1]," * 1000 + b"[1]]"
    assert json_depth(many_flat) == 2
    in_strings = json.dumps({"s": "[" * 500, "t": 'quote \\" [[[ ' * 50}).encode()
    assert json_depth(in_strings) == 1


def test_validation_messages_name_fields_not_values() -> None:
    errors = [
        {
            "type": "string_type",
            "loc": ("body", "inputs", 0, "name"),
            "msg": "Input should be a valid string",
            "input": ["secret"] * 1000,
        },  # fmt: skip
        {"type": "missing", "loc": ("body", "inputs"), "msg": "Field required"},
        {
            "type": "json_invalid",
            "loc": ("body", 17),
            "msg": "JSON decode error",
            "ctx": {"error": "depth limit exceeded"},
        },  # fmt: skip
    ]
    message = validation_message(errors)
    assert message == (
        "invalid inference request: inputs.0.name: Input should be a valid string; inputs is "
        "missing; the body is not valid JSON at position 17: depth limit exceeded"
    )
    assert "secret" not in validation_message(errors * 10)
    assert validation_message(errors * 10).endswith("and 25 more")


# -- through the server ------------------------------------------------------------------------


def test_a_good_request_passes_untouched(client: httpx.Client) -> None:
    response = client.post("/echo", content=b'{"a": [1, 2, 3]}')
    assert response.json() == {"bytes": 16, "encoding": None}
    assert response.headers.get("connection") != "close"


def test_bodies_over_the_limit_get_413_and_the_connection_stays(client: httpx.Client) -> None:
    big = b"[" + b"1," * LIMITS.max_request_bytes + b"1]"
    refused(client.post("/echo", content=big), 413, f"exceeds {LIMITS.max_request_bytes} bytes")

    def chunks() -> Iterator[bytes]:  # no Content-Length: found out while reading
        for _ in range(8):
            yield b" " * (LIMITS.max_request_bytes // 4)

    response = client.post("/echo", content=chunks())
    refused(response, 413, "exceeds")
    assert response.headers.get("connection") != "close"
    assert client.post("/echo", json={}).status_code == 200


def test_gzip_bodies_are_decoded_within_the_limit(client: httpx.Client) -> None:
    headers = {"content-encoding": "gzip", "content-type": "application/json"}
    small = gzip.compress(b'{"a": 1}')
    assert client.post("/echo", content=small, headers=headers).json() == {
        "bytes": 8,
        "encoding": None,
    }
    bomb = gzip.compress(b" " * (LIMITS.max_request_bytes * 100))
    assert len(bomb) < LIMITS.max_request_bytes
    refused(client.post("/echo", content=bomb, headers=headers), 413, "decoded body exceeds")
    refused(client.post("/echo", content=b"not gzip", headers=headers), 400, "not valid gzip")
    refused(client.post("/echo", content=small[:-4], headers=headers), 400, "gzip")
    br = {"content-encoding": "br"}
    refused(client.post("/echo", content=b"{}", headers=br), 415, "'br' is not accepted")


def test_bodies_must_be_json(client: httpx.Client) -> None:
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
        response = client.post("/echo", content=b"{}", headers={"content-type": content_type})
        refused(response, 415, f"must be application/json, not '{content_type}'")
    for content_type in ("application/json; charset=utf-8", "application/vnd.v2+json"):
        response = client.post("/echo", content=b"{}", headers={"content-type": content_type})
        assert response.status_code == 200
    assert client.get("/header?value=x", headers={"content-type": "text/plain"}).is_success


def test_deep_json_is_refused_before_the_app(client: httpx.Client) -> None:
    for depth in (MAX_JSON_DEPTH + 1, 600, 1000, 5000):
        body = b'{"a": ' + b"[" * depth + b"1" + b"]" * depth + b"}"
        refused(client.post("/echo", content=body), 400, f"nests {depth + 1} levels deep")
    body = b"[" * (MAX_JSON_DEPTH - 1) + b"]" * (MAX_JSON_DEPTH - 1)
    assert client.post("/echo", content=body).status_code == 200


def test_fastapis_errors_are_json_reasons(client: httpx.Client) -> None:
    secret = "do-not-echo-" * 1000
    response = client.post("/typed", json={"name": [secret], "size": "big"})
    refused(response, 422, "name: Input should be a valid string")
    assert "size: Input should be a valid integer" in response.json()["error"]
    assert secret[:20] not in response.text
    refused(client.post("/typed", content=b'{"name": '), 422, "not valid JSON at position")
    refused(client.get("/echo"), 405, "method GET is not allowed on /echo; use POST")
    refused(client.get("/nowhere"), 404, "no such endpoint: GET /nowhere")
    assert client.post("/echo", json={}).status_code == 200


def test_an_unexpected_error_is_a_json_500_that_closes_cleanly(client: httpx.Client) -> None:
    response = client.get("/boom")
    refused(response, 500, "internal server error (RuntimeError)")
    assert response.headers["connection"] == "close"  # so no pooled client reuses it
    assert client.post("/echo", json={}).status_code == 200


def test_header_values_that_cannot_go_on_the_wire_are_dropped(client: httpx.Client) -> None:
    response = client.get("/header", params={"value": "a\r\nSet-Cookie: evil=1"})
    assert response.status_code == 200 and "x-echo" not in response.headers
    assert "set-cookie" not in response.headers
    assert client.get("/header", params={"value": "fine"}).headers["x-echo"] == "fine"


# -- on the wire -------------------------------------------------------------------------------


def test_half_sent_requests_get_408_after_the_read_timeout(port: int) -> None:
    half_head = b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Le"
    half_body = request("POST", "/echo", b'{"a": 1}' * 10)[:-20]
    for data in (half_head, half_body):
        with Connection(port) as connection:
            connection.send(data)
            answer = connection.answer()
            assert answer is not None and answer.status == 408, data
            assert answer.json() == {"error": "the request was not received in full within 0.5 s"}
            assert LIMITS.read_timeout - 0.1 < answer.seconds < LIMITS.read_timeout + 2
            assert answer.closes and connection.closed_by_peer(2)


def test_a_connection_that_sends_nothing_is_closed_silently(port: int) -> None:
    with Connection(port) as connection:
        assert connection.closed_by_peer(LIMITS.read_timeout + 2)


def test_the_clock_is_per_request_on_a_kept_alive_connection(port: int) -> None:
    with Connection(port) as connection:
        for _ in range(3):
            time.sleep(LIMITS.read_timeout * 0.6)  # idle between requests is keep-alive's
            connection.send(request("POST", "/echo", b"{}"))
            answer = connection.answer()
            assert answer is not None and answer.status == 200


def test_headers_over_the_limit_get_431(port: int) -> None:
    big = request("GET", "/header?value=x", headers={"x-big": "a" * 5000})
    answer = exchange(port, big)
    assert answer is not None and answer.status == 431 and answer.closes
    assert answer.json() == {"error": "the request line and headers exceed 4096 bytes"}
    # One endless header, sent slowly, is cut off too (not buffered until it ends).
    with Connection(port) as connection:
        connection.send(b"GET /header?value=x HTTP/1.1\r\nX-Big: ")
        for _ in range(10):
            try:
                connection.send(b"a" * 1000)
            except OSError:
                break
            time.sleep(0.01)
        answer = connection.answer()
        assert answer is not None and answer.status == 431


@pytest.mark.parametrize(
    "data",
    [
        b"BREW /echo HTTP/1.1\r\nHost: x\r\n\r\n",
        b"\x00\x01\x02 hello\r\n\r\n",
        b"GET /\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /echo HTTP/1.1\r\nX-A: a\rb\r\n\r\n",
        b"POST /echo HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"POST /echo HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    ],
    ids=["method", "garbage", "path-bytes", "cr-in-header", "cl-and-te", "bad-length", "h2"],
)
def test_what_is_not_http_gets_a_json_400(port: int, data: bytes) -> None:
    answer = exchange(port, data)
    assert answer is not None and answer.status == 400 and answer.closes
    assert answer.json()["error"].startswith("the request is not valid HTTP/1.1")


def test_a_client_waiting_for_100_continue_is_refused_and_released(port: int) -> None:
    with Connection(port) as connection:
        waits = {"expect": "100-continue", "content-length": "999999999"}
        connection.send(request("POST", "/echo", headers=waits))
        answer = connection.answer()
        assert answer is not None and answer.status == 413 and answer.closes


def test_pipelined_requests_are_answered_in_order(port: int) -> None:
    with Connection(port) as connection:
        connection.send(request("POST", "/echo", b"{}") + request("POST", "/echo", b"[1, 2]"))
        first, second = connection.answer(), connection.answer()
        assert first is not None and first.json()["bytes"] == 2
        assert second is not None and second.json()["bytes"] == 6


def test_the_repository_api_needs_the_control_token(client: httpx.Client) -> None:
    url = "/v2/repository/models/wine/unload"
    refused(client.post(url), 401, "toolkit's alone")
    refused(client.post(url, headers={"Authorization": "Bearer guessed"}), 401, "toolkit's alone")
    # The refusal keeps the connection: the next request on it is answered.
    assert client.post("/echo", json={}).status_code == 200
    answer = client.post(url, headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200 and answer.json() == {"unloaded": "wine"}

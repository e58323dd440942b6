"""MLServer's REST inference route without FastAPI's per-request machinery.

MLServer answers ``POST /v2/models/{name}[/versions/{version}]/infer`` through FastAPI: a
``Request`` object, dependency resolution for the path, body and response parameters, the
body validated into an ``InferenceRequest``, the answer validated again as an
``InferenceResponse`` and then serialized. With a model that does nothing that is most of
MLServer's own cost per request. :class:`FastInfer` is an ASGI endpoint for the same two paths,
put before MLServer's routes by :func:`install`; per request it does only what the answer
needs, through MLServer's own pieces:

- the body parsed by orjson and validated by pydantic into the same ``InferenceRequest`` (as
  FastAPI does); a body that is not one goes to MLServer's route unchanged, so every refusal
  keeps its status and message exactly;
- the request headers in ``parameters.headers``, as MLServer's endpoint puts them;
- MLServer's ``DataPlane.infer``: readiness, its Prometheus metrics, the CloudEvents headers,
  and the runtime's ``predict`` (our runtime's checks and batching);
- the answer dumped as FastAPI dumps it (JSON mode, unset and None fields left out) and
  written with orjson, the CloudEvents headers as response headers.

The middleware around the router stays as it was (error handlers, the Prometheus middleware
with its per-path metrics), and so does the guard in front of the app. A request without an id
gets one from :func:`request_id`: MLServer's ``uuid4`` reads ``os.urandom``, which releases the
GIL, and the event loop then waits for it while a batch predicts in the worker thread.

Routing hooks (which version answers a request) belong in :meth:`FastInfer.infer`, which both
paths of the route share.
"""

from __future__ import annotations

import random
import uuid
from typing import Any

import orjson
from mlserver.codecs.json import encode_to_json_bytes
from mlserver.handlers import DataPlane
from mlserver.types import InferenceRequest, InferenceResponse
from mlserver.utils import extract_headers, insert_headers
from pydantic import ValidationError
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from mlops_kit.serving.guard import replay

__all__ = ["INFER_PATHS", "FastInfer", "install", "render", "request_id"]

INFER_PATHS = (
    "/v2/models/{model_name}/infer",
    "/v2/models/{model_name}/versions/{model_version}/infer",
)
"""MLServer's inference paths (its ``generate`` aliases keep MLServer's own route)."""

_JSON = (b"content-type", b"application/json")


def request_id() -> str:
    """A random version-4 UUID for a request that brought no id, without a system call."""
    return str(uuid.UUID(int=random.getrandbits(128), version=4))


def render(response: InferenceResponse) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """The body and headers MLServer's REST endpoint answers ``response`` with.

    FastAPI dumps the endpoint's return value in JSON mode without unset and None fields and
    MLServer writes it with orjson; the CloudEvents headers travel in
    ``parameters.headers`` and leave them for the HTTP headers (``extract_headers``).
    """
    headers = extract_headers(response) or {}
    content = response.model_dump(mode="json", exclude_unset=True, exclude_none=True)
    body = encode_to_json_bytes(content)
    raw = [(b"content-length", str(len(body)).encode()), _JSON]
    raw += [(k.lower().encode("latin-1"), str(v).encode("latin-1")) for k, v in headers.items()]
    return body, raw


class FastInfer:
    """ASGI endpoint of the inference paths: what MLServer's route does, minus FastAPI.

    ``fallback`` is MLServer's own route for the same path: it takes every request whose body
    is not a valid ``InferenceRequest``, to refuse it in its own words.
    """

    def __init__(self, data_plane: DataPlane, fallback: BaseRoute) -> None:
        self._data_plane = data_plane
        self._fallback = fallback

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = await _read_body(receive)
        if body is None:
            return  # the client went away
        payload = _parse(body)
        if payload is None:
            await self._fallback.handle(scope, replay(body, receive), send)
            return
        insert_headers(payload, _header_dict(scope["headers"]))
        if payload.id is None:
            payload.id = request_id()
        params = scope["path_params"]
        response = await self.infer(payload, params["model_name"], params.get("model_version"))
        content, headers = render(response)
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": content, "more_body": False})

    async def infer(
        self, payload: InferenceRequest, name: str, version: str | None
    ) -> InferenceResponse:
        """The answer of model ``name`` (``version``, or the default one) to ``payload``."""
        return await self._data_plane.infer(payload, name, version)


def install(app: Any, data_plane: DataPlane) -> None:
    """Put a :class:`FastInfer` route before each of MLServer's inference routes of ``app``."""
    routes = app.router.routes
    for path in INFER_PATHS:
        original = next(
            (r for r in routes if getattr(r, "path", None) == path and not _is_fast(r)), None
        )
        if original is None:
            raise RuntimeError(f"MLServer's app has no route {path}: is this MLServer 1.7?")
        fast = Route(path, FastInfer(data_plane, original), methods=["POST"])
        routes.insert(0, fast)


def _is_fast(route: BaseRoute) -> bool:
    return isinstance(getattr(route, "app", None), FastInfer)


def _parse(body: bytes) -> InferenceRequest | None:
    """``body`` as FastAPI would validate it; None when it would refuse it."""
    try:
        return InferenceRequest.model_validate(orjson.loads(body))
    except (orjson.JSONDecodeError, ValidationError):
        return None


def _header_dict(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """The headers as ``dict(starlette.Headers)`` has them: the first of repeated names wins."""
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in reversed(raw)}


async def _read_body(receive: Receive) -> bytes | None:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)

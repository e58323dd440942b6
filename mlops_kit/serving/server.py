"""``mlserver start FOLDER`` with the guard in front: the command the local target runs.

    python -c "from mlops_kit.serving.server import main; main()" FOLDER \\
        [--max-request-bytes N] [--max-header-bytes N] [--read-timeout SECONDS]

MLServer builds its FastAPI apps and their uvicorn servers itself (one for the V2 REST API,
one for Prometheus metrics), with no hook for either; this does what ``mlserver start`` does
(same settings files, same event loop) and, between making the server and starting it,
installs the pieces of :mod:`mlops_kit.serving.guard` on both: the exception handlers on the
app, the :class:`~mlops_kit.serving.guard.Guard` around it, and the guarded protocol in
uvicorn's configuration. (The gRPC port keeps gRPC's own message limit.)
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import hmac
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from mlserver import MLServer
from mlserver.cli.serve import load_settings
from mlserver.errors import MLServerError
from mlserver.grpc.logging import gRPCLoggerName
from mlserver.logging import configure_logger
from mlserver.utils import install_uvloop_event_loop

from mlops_kit.serving import CONTROL_TOKEN_ENV, fastlane
from mlops_kit.serving.guard import Guard, GuardedHttpProtocol, Limits, install_handlers

__all__ = ["SWITCH_INTERVAL", "install", "main"]

SWITCH_INTERVAL = 0.0005
"""Seconds a thread waiting for the GIL waits before asking the holder to let go (Python's
default is 0.005). A batch predicts in a worker thread and lets go of the GIL once per tree of
a forest (scikit-learn's traversal runs without it); with the event loop busy, each time it
waited up to the default 5 ms to get it back, so a 100-tree batch took tens of milliseconds.
Measured under wrk (50 connections): p99 250-330 ms at 0.5 ms against 580-2000 ms at 5 ms,
batches predicted 23-28 times a second against 19, on a machine loaded by other jobs."""


_REPOSITORY_METHODS = ("RepositoryIndex", "RepositoryModelLoad", "RepositoryModelUnload")


def install(server: MLServer, limits: Limits, control_token: str | None = None) -> None:
    """Put the guard in front of ``server``'s HTTP servers and the fast inference route
    (:mod:`mlops_kit.serving.fastlane`) in its REST app; call before ``server.start()``.

    With ``control_token`` the model-repository API needs it, over HTTP
    (``Authorization: Bearer``) and gRPC (``authorization`` metadata) alike.
    Uses private attributes of MLServer 1.7 (``_rest_server``, ``_metrics_server``, their
    ``_app`` and ``_get_config``): the tests of this package fail if a new MLServer moves them.
    """
    fastlane.install(server._rest_server._app, server._data_plane)
    _guard(server._rest_server, limits, control_token)
    if server._metrics_server is not None:
        _guard(server._metrics_server, limits, None)
    if control_token:
        _lock_grpc_repository(control_token)
    _unset_grpc_ids()
    _quiet_client_errors()


def _guard(part: Any, limits: Limits, control_token: str | None) -> None:
    install_handlers(part._app)
    get_config = part._get_config

    def guarded_config() -> Any:
        config = get_config()
        config.app = Guard(config.app, limits, control_token)
        config.http = GuardedHttpProtocol.with_limits(limits)
        return config

    part._get_config = guarded_config


def _lock_grpc_repository(token: str) -> None:
    """The gRPC repository methods of this server process answer PERMISSION_DENIED without
    ``authorization: Bearer <token>`` metadata (MLServer registers bound methods of its
    servicers when the gRPC server starts, so the classes are wrapped before that)."""
    import grpc
    from mlserver.grpc.model_repository import ModelRepositoryServicer
    from mlserver.grpc.servicers import InferenceServicer

    expected = f"Bearer {token}".encode()

    def locked(method: Any) -> Any:
        @functools.wraps(method)
        async def checked(self: Any, request: Any, context: Any) -> Any:
            given = dict(context.invocation_metadata() or ()).get("authorization", "")
            if not hmac.compare_digest(str(given).encode(), expected):
                await context.abort(
                    grpc.StatusCode.PERMISSION_DENIED,
                    "the model repository API is the toolkit's alone",
                )
            return await method(self, request, context)

        return checked

    for servicer in (InferenceServicer, ModelRepositoryServicer):
        for name in _REPOSITORY_METHODS:
            if hasattr(servicer, name):
                setattr(servicer, name, locked(getattr(servicer, name)))


def _unset_grpc_ids() -> None:
    """A gRPC request without an id reaches the runtime without one, as over REST.

    Protobuf has no absent string: MLServer's converter turns an unset ``id`` into ``""``, which
    the runtime refuses as a request id (and MLServer would not replace with a fresh one).
    """
    from mlserver.grpc.servicers import InferenceServicer

    convert = InferenceServicer._InsertHeaders
    if getattr(convert, "unsets_ids", False):
        return

    @functools.wraps(convert)
    def converted(self: Any, request: Any, context: Any) -> Any:
        payload = convert(self, request, context)
        if payload.id == "":
            payload.id = None
        return payload

    converted.unsets_ids = True  # type: ignore[attr-defined]
    InferenceServicer._InsertHeaders = converted


class _ClientErrors(logging.Filter):
    """A request MLServer refused with a 4xx goes to the log as one line, not a traceback.

    MLServer's gRPC servicers log every ``MLServerError`` they turn into a status with
    ``logger.exception``, a client's malformed request included (its REST side does not).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, MLServerError) and error.status_code < 500:
            record.exc_info = record.exc_text = None
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


def _quiet_client_errors() -> None:
    grpc_logger = logging.getLogger(gRPCLoggerName)
    if not any(isinstance(f, _ClientErrors) for f in grpc_logger.filters):
        grpc_logger.addFilter(_ClientErrors())


async def _serve(folder: str, limits: Limits) -> None:
    settings, models = await load_settings(folder)
    server = MLServer(settings)
    install(server, limits, os.environ.pop(CONTROL_TOKEN_ENV, None))
    await server.start(models)


def main(argv: Sequence[str] | None = None) -> None:
    """Serve the MLServer settings folder named on the command line behind the guard."""
    defaults = Limits()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("folder", help="folder with settings.json and model-settings.json")
    parser.add_argument("--max-request-bytes", type=int, default=defaults.max_request_bytes)
    parser.add_argument("--max-header-bytes", type=int, default=defaults.max_header_bytes)
    parser.add_argument("--read-timeout", type=float, default=defaults.read_timeout)
    args = parser.parse_args(argv)
    limits = Limits(
        max_request_bytes=args.max_request_bytes,
        max_header_bytes=args.max_header_bytes,
        read_timeout=args.read_timeout,
    )
    configure_logger()
    install_uvloop_event_loop()
    sys.setswitchinterval(SWITCH_INTERVAL)
    asyncio.run(_serve(args.folder, limits))

"""A load test's plan and what it may do: objectives, the bounded spec, the loopback check."""

from __future__ import annotations

import ipaddress
import json
import math
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from pydantic import ValidationError

from mlops_kit.errors import ParameterError, RemoteLoadRefused
from mlops_kit.settings_loadtest import LoadLimits, Slo

if TYPE_CHECKING:
    from mlops_kit.settings import Settings


def slo_from(
    settings: Settings | None = None,
    *,
    p99_ms: float | None = None,
    max_error_rate: float | None = None,
    min_rps: float | None = None,
) -> Slo:
    """Objectives: an argument given wins, else the project file's ``load_test.slo``, else defaults.

    ParameterError names an argument that is not a number or is out of the objective's range.
    """
    base = settings.load_test.slo if settings is not None else Slo()
    given = {"p99_ms": p99_ms, "max_error_rate": max_error_rate, "min_rps": min_rps}
    values = {**base.model_dump(), **{k: v for k, v in given.items() if v is not None}}
    try:
        # Strict: a bool or a string is not a number here, as it would be in a project file.
        return Slo.model_validate(values, strict=True)
    except ValidationError as exc:
        error = exc.errors()[0]
        name = str(error["loc"][0]) if error["loc"] else "slo"
        raise ParameterError(name, f"{error['msg']}, not {values.get(name)!r}") from None


def check_host(url: str, *, allow_remote: bool = False) -> str:
    """The host of ``url`` if it may be loaded: loopback, or anything with ``allow_remote``.

    A name is resolved and every address it resolves to must be loopback (``localhost``,
    ``127.0.0.0/8``, ``::1``). Raises RemoteLoadRefused otherwise, ParameterError for a bad URL.
    """
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ParameterError("url", f"must be an http(s) URL with a host, not {url!r}")
    host = parsed.hostname
    if allow_remote:
        return host
    try:
        if ipaddress.ip_address(host).is_loopback:
            return host
        raise RemoteLoadRefused(url, host)
    except ValueError:
        pass  # a name, not an address
    try:
        infos = socket.getaddrinfo(host, parsed.port or 80, proto=socket.IPPROTO_TCP)
    except OSError as exc:
        raise RemoteLoadRefused(url, host, f" (it does not resolve: {exc})") from None
    addresses = sorted({str(info[4][0]) for info in infos})
    if addresses and all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addresses):
        return host
    raise RemoteLoadRefused(url, host, f" (it resolves to {', '.join(addresses)})")


@dataclass(frozen=True)
class LoadSpec:
    """What to send where, and how hard: one load test's plan."""

    url: str
    """The ``.../infer`` URL requests are POSTed to."""
    body: str
    """The JSON request body, sent as is with every request."""
    users: int = 10
    """Simulated users; each sends its next request as soon as its last one is answered."""
    spawn_rate: float = 10.0
    """Users started per second (ramp-up); all are running after ``users / spawn_rate`` s."""
    duration_s: float = 5.0
    """Seconds from the start of the ramp-up to the end of the load."""
    rate: float | None = None
    """Target requests per second over all users (paced); None sends as fast as answers come."""
    max_requests: int | None = None
    """Stop after this many requests; None means the limit's ``max_requests``."""
    timeout_s: float | None = None
    """Per-request timeout; None means the limit's ``request_timeout_s``."""

    def checked(self, limits: LoadLimits) -> LoadSpec:
        """This spec with defaults filled in; ParameterError names a value out of bounds."""
        max_requests = limits.max_requests if self.max_requests is None else self.max_requests
        timeout = limits.request_timeout_s if self.timeout_s is None else self.timeout_s
        _bounded("users", self.users, 1, limits.max_users, integer=True)
        _bounded("spawn_rate", self.spawn_rate, 0, 10_000, open_low=True)
        _bounded("duration_s", self.duration_s, 0, limits.max_duration_s, open_low=True)
        _bounded("max_requests", max_requests, 1, limits.max_requests, integer=True)
        _bounded("timeout_s", timeout, 0, 60, open_low=True)
        if self.rate is not None:
            _bounded("rate", self.rate, 0, 1_000_000, open_low=True)
        try:
            json.loads(self.body)
        except (TypeError, ValueError) as exc:
            raise ParameterError("body", f"must be JSON text: {exc}") from None
        return LoadSpec(
            url=self.url,
            body=self.body,
            users=self.users,
            spawn_rate=float(self.spawn_rate),
            duration_s=float(self.duration_s),
            rate=None if self.rate is None else float(self.rate),
            max_requests=max_requests,
            timeout_s=float(timeout),
        )


def _bounded(
    name: str, value: Any, low: float, high: float, *, integer: bool = False, open_low: bool = False
) -> None:
    kind: Any = int if integer else int | float
    if isinstance(value, bool) or not isinstance(value, kind) or math.isnan(value):
        raise ParameterError(
            name, f"must be {'an integer' if integer else 'a number'}, not {value!r}"
        )
    if value > high or value < low or (open_low and value == low):
        low_text = f"above {low:g}" if open_low else f"at least {low:g}"
        raise ParameterError(name, f"must be {low_text} and at most {high:g}, not {value!r}")

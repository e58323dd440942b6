"""A small client of the Prometheus HTTP API: instant and range queries, as plain data.

Any Prometheus answers it: the local one (``mlops-kit monitor``) or a cluster's
(``monitor.prometheus_url``). Every failure, refused query or unreachable server alike, is a
:class:`~mlops_kit.errors.QueryFailed` naming the URL and the expression.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from mlops_kit.errors import QueryFailed


@dataclass(frozen=True)
class Sample:
    """One series of an instant query: its labels and its value at the query's time."""

    labels: dict[str, str]
    value: float


@dataclass(frozen=True)
class Series:
    """One series of a range query: its labels and its ``(unix time, value)`` points."""

    labels: dict[str, str]
    points: list[tuple[float, float]]


class PrometheusClient:
    """Queries a Prometheus at ``url`` (``http://host:port``) through ``/api/v1/query[_range]``."""

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        import httpx

        self.url = url.rstrip("/")
        # trust_env=False: a loopback Prometheus must not be asked through a configured proxy.
        loopback = any(h in self.url for h in ("//127.0.0.1", "//localhost", "//[::1]"))
        self._client = httpx.Client(timeout=timeout, trust_env=not loopback)

    def query(self, expr: str, *, at: float | None = None) -> list[Sample]:
        """Evaluate ``expr`` at ``at`` (unix time; default now): one sample per series."""
        params = {"query": expr, "time": f"{at if at is not None else time.time():.3f}"}
        data = self._get("/api/v1/query", params, expr)
        kind, result = data["resultType"], data["result"]
        if kind in ("scalar", "string"):
            return [Sample({}, _number(result[1]))]
        return [Sample(dict(r["metric"]), _number(r["value"][1])) for r in result]

    def query_range(self, expr: str, *, start: float, end: float, step: float) -> list[Series]:
        """Evaluate ``expr`` every ``step`` seconds from ``start`` to ``end`` (unix times)."""
        params = {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"}
        data = self._get("/api/v1/query_range", params, expr)
        return [
            Series(dict(r["metric"]), [(float(t), _number(v)) for t, v in r["values"]])
            for r in data["result"]
        ]

    def value(self, expr: str, *, at: float | None = None) -> float | None:
        """The sum of ``expr``'s samples, or None when it has none (or only NaN)."""
        values = [s.value for s in self.query(expr, at=at) if not math.isnan(s.value)]
        return sum(values) if values else None

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()

    def __enter__(self) -> PrometheusClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _get(self, path: str, params: dict[str, str], expr: str) -> dict[str, Any]:
        import httpx

        try:
            response = self._client.get(self.url + path, params=params)
        except httpx.HTTPError as exc:
            raise QueryFailed(self.url, expr, f"{type(exc).__name__}: {exc}") from None
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code != 200 or body.get("status") != "success":
            reason = body.get("error") or f"HTTP {response.status_code}"
            raise QueryFailed(self.url, expr, str(reason))
        data: dict[str, Any] = body["data"]
        return data


def _number(text: str) -> float:
    """A sample value as Prometheus writes it (``"1.5"``, ``"NaN"``, ``"+Inf"``)."""
    return float(text)

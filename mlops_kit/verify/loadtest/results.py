"""What a load test measured: client figures from raw samples, and an environment's run."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any

import numpy as np

from mlops_kit import display

if TYPE_CHECKING:
    import pandas as pd

    from mlops_kit.verify.loadtest.spec import LoadSpec
    from mlops_kit.verify.monitoring import ServerFigures

PERCENTILES = (50, 90, 95, 99)


def _percentiles(latency_s: np.ndarray) -> dict[str, float | None]:
    if latency_s.size == 0:
        return dict.fromkeys([*(f"p{p}" for p in PERCENTILES), "min", "mean", "max"])
    values = np.percentile(latency_s, PERCENTILES) * 1000.0
    found: dict[str, float | None] = {
        f"p{p}": round(float(v), 3) for p, v in zip(PERCENTILES, values, strict=True)
    }
    found["min"] = round(float(latency_s.min()) * 1000.0, 3)
    found["mean"] = round(float(latency_s.mean()) * 1000.0, 3)
    found["max"] = round(float(latency_s.max()) * 1000.0, 3)
    return found


def _label(status: int, kinds: list[str]) -> str:
    """``"200"`` for an HTTP status; the exception's name for ``-k`` (``kinds[k - 1]``)."""
    if status > 0:
        return str(status)
    return kinds[-status - 1] if 0 < -status <= len(kinds) else "no answer"


@dataclass(frozen=True)
class LoadTestResult(display.Rich):
    """What the client saw: throughput, latency percentiles, errors — overall and per second."""

    url: str
    users: int
    spawn_rate: float
    duration_s: float
    rate: float | None
    started_at: str
    """Wall-clock start (ISO 8601, UTC)."""
    elapsed_s: float
    """Seconds from the first user's start to the end of the load."""
    stopped_by: str
    """``duration`` or ``max_requests``: which bound ended the run."""
    requests: int
    """Requests completed (answered, refused or timed out); in flight at the stop not counted."""
    failures: int
    """Completed requests that did not get a 2xx answer."""
    by_status: dict[str, int]
    """Completed requests by HTTP status, or by exception name when no answer came."""
    latency_ms: dict[str, float | None]
    """``p50``, ``p90``, ``p95``, ``p99``, ``min``, ``mean``, ``max`` of successful requests."""
    timeline: list[dict[str, Any]] = field(default_factory=list)
    """Per second of the run (by completion time): requests, errors, rps, percentiles, users."""
    generator_cpu_s: float | None = None
    """CPU time the load generator itself used during the load (start-up excluded)."""

    @property
    def generator_busy(self) -> float | None:
        """Share of one core the generator used; near 1.0 it, not the server, set the pace."""
        if self.generator_cpu_s is None or self.elapsed_s <= 0:
            return None
        return self.generator_cpu_s / self.elapsed_s

    @property
    def rps(self) -> float:
        """Completed requests per second over the run."""
        return self.requests / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def error_rate(self) -> float:
        """Share of completed requests that failed (1.0 when nothing completed)."""
        return self.failures / self.requests if self.requests else 1.0

    @property
    def p99_ms(self) -> float | None:
        """99th percentile latency of successful requests."""
        return self.latency_ms.get("p99")

    def summary(self) -> dict[str, Any]:
        """The headline figures, flat."""
        return {
            "url": self.url,
            "users": self.users,
            "duration_s": self.duration_s,
            "elapsed_s": round(self.elapsed_s, 2),
            "stopped_by": self.stopped_by,
            "requests": self.requests,
            "rps": round(self.rps, 1),
            "failures": self.failures,
            "error_rate": round(self.error_rate, 4),
            **{f"{k}_ms": v for k, v in self.latency_ms.items()},
            "by_status": dict(self.by_status),
            "generator_cpu": None if self.generator_busy is None else f"{self.generator_busy:.0%}",
        }

    def headline(self) -> str:
        """One line: requests, throughput, p99 and errors."""
        p99 = "n/a" if self.p99_ms is None else f"{self.p99_ms:.1f} ms"
        return (
            f"{self.requests} requests in {self.elapsed_s:.1f} s by {self.users} users: "
            f"{self.rps:.1f} req/s, p99 {p99}, errors {self.error_rate:.2%}"
        )

    def _repr_html_(self) -> str:
        return display.paragraph(display.esc(self.headline())) + display.fields(_client(self))

    def to_dict(self) -> dict[str, Any]:
        """Everything, as plain data (JSON-ready)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LoadTestResult:
        """The inverse of :meth:`to_dict`."""
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})

    def timeline_frame(self) -> pd.DataFrame:
        """The per-second timeline as a table; one column per status code (``status_<code>``)."""
        import pandas as pd

        rows = []
        for row in self.timeline:
            flat = {k: v for k, v in row.items() if k != "by_status"}
            flat.update({f"status_{k}": n for k, n in row.get("by_status", {}).items()})
            rows.append(flat)
        frame = pd.DataFrame(rows)
        return frame.fillna({c: 0 for c in frame.columns if c.startswith("status_")})

    @classmethod
    def from_samples(
        cls,
        spec: LoadSpec,
        *,
        start: np.ndarray,
        latency: np.ndarray,
        status: np.ndarray,
        kinds: list[str],
        elapsed_s: float,
        stopped_by: str,
        started_at: str,
        users_at: list[tuple[float, int]] | None = None,
        generator_cpu_s: float | None = None,
    ) -> LoadTestResult:
        """Aggregate raw samples: ``start`` and ``latency`` in seconds from the run's origin.

        ``status`` is the HTTP status of each request, or ``-k`` when none came and
        ``kinds[k - 1]`` names the exception.
        """
        ok = (status >= 200) & (status < 300)
        codes_seen, counts = np.unique(status, return_counts=True)
        by_status = {_label(int(c), kinds): int(n) for c, n in zip(codes_seen, counts, strict=True)}
        end = start + latency
        # Whole seconds; a last part-second shorter than half a second joins the one before.
        seconds = max(int(elapsed_s + 0.5), 1)
        bucket = np.clip(np.floor(end).astype(int), 0, seconds - 1)
        timeline = []
        for second in range(seconds):
            mask = bucket == second
            width = elapsed_s - second if second == seconds - 1 else 1.0
            width = max(width, 1e-9)
            bad, bad_counts = np.unique(status[mask & ~ok], return_counts=True)
            codes = {_label(int(c), kinds): int(n) for c, n in zip(bad, bad_counts, strict=True)}
            good = latency[mask & ok]
            pct = _percentiles(good)
            timeline.append(
                {
                    "second": second,
                    "requests": int(mask.sum()),
                    "errors": int((mask & ~ok).sum()),
                    "rps": round(float(mask.sum()) / width, 2),
                    **{f"p{p}_ms": pct[f"p{p}"] for p in PERCENTILES},
                    "max_ms": pct["max"],
                    "users": _users_at(users_at or [], second + width),
                    "by_status": codes,
                }
            )
        return cls(
            url=spec.url,
            users=spec.users,
            spawn_rate=spec.spawn_rate,
            duration_s=spec.duration_s,
            rate=spec.rate,
            started_at=started_at,
            elapsed_s=round(elapsed_s, 4),
            stopped_by=stopped_by,
            requests=int(status.size),
            failures=int((~ok).sum()),
            by_status=dict(sorted(by_status.items())),
            latency_ms=_percentiles(latency[ok]),
            timeline=timeline,
            generator_cpu_s=None if generator_cpu_s is None else round(generator_cpu_s, 3),
        )


def _users_at(users_at: list[tuple[float, int]], t: float) -> int:
    current = 0
    for when, users in users_at:
        if when > t:
            break
        current = users
    return current


@dataclass(frozen=True)
class LoadTestRun(display.Rich):
    """A load test of what one environment serves: client figures beside the server's own."""

    environment: str
    model_name: str
    version: str
    endpoint: str
    result: LoadTestResult
    server: ServerFigures | None = None
    """The server's counters over the run (None where the target exposes no metrics URL)."""
    server_note: str = ""
    """Why there are no server figures, when there are none."""

    def comparison(self) -> pd.DataFrame:
        """Client-side and server-side figures side by side, one row per figure."""
        import pandas as pd

        r, s = self.result, self.server
        rows = [
            ("requests", r.requests, s.requests if s else None),
            ("errors", r.failures, s.errors if s else None),
            ("req/s", round(r.rps, 1), round(s.rps, 1) if s else None),
            ("mean ms", r.latency_ms.get("mean"), _r(s.mean_ms) if s else None),
            ("p50 ms", r.latency_ms.get("p50"), _r(s.p50_ms) if s else None),
            ("p90 ms", r.latency_ms.get("p90"), _r(s.p90_ms) if s else None),
            ("p99 ms", r.latency_ms.get("p99"), _r(s.p99_ms) if s else None),
        ]
        if s is not None:
            rows.append(("time in model, mean ms", None, _r(s.model_mean_ms)))
            rows.append(("server CPU, % of a core", None, _r(s.cpu_percent)))
        shown = [tuple("" if v is None else v for v in row) for row in rows]
        return pd.DataFrame(shown, columns=["figure", "client", "server"], dtype=object).set_index(
            "figure"
        )

    def summary(self) -> dict[str, Any]:
        """Headline figures of both sides."""
        return {
            "environment": self.environment,
            "model": f"{self.model_name} v{self.version}",
            **self.result.summary(),
            "server": self.server.to_dict() if self.server else self.server_note,
        }

    def _repr_html_(self) -> str:
        r = self.result
        server = (
            display.fields(_server(self.server), title="the server counted")
            if self.server
            else display.paragraph(display.esc(self.server_note or "no server metrics"))
        )
        return display.section(
            f"Load test of {self.model_name} v{self.version} in {self.environment}",
            display.paragraph(display.esc(r.headline()) + f" (stopped by {r.stopped_by})."),
            display.fields(_client(r), title="the client measured"),
            server,
        )

    def _figure_(self) -> display.Figure:
        return display.Figure(f"load test ({self.environment})", self.result.headline())


def _client(r: LoadTestResult) -> dict[str, Any]:
    latency = ", ".join(f"{k} {v:.1f}" for k, v in r.latency_ms.items() if v is not None)
    return {
        "endpoint": r.url,
        "users": f"{r.users} (spawned {r.spawn_rate:g}/s)",
        "paced": "as fast as answered" if r.rate is None else f"{r.rate:g} req/s",
        "requests": r.requests,
        "throughput": f"{r.rps:.1f} req/s",
        "latency, ms": latency or "no successful request",
        "errors": f"{r.failures} ({r.error_rate:.2%})",
        "by status": ", ".join(f"{k}: {n}" for k, n in sorted(r.by_status.items())),
        "generator CPU": "–" if r.generator_busy is None else f"{r.generator_busy:.0%} of a core",
    }


def _server(s: ServerFigures) -> dict[str, Any]:
    latency = {"mean": s.mean_ms, "p50": s.p50_ms, "p90": s.p90_ms, "p99": s.p99_ms}
    return {
        "requests": f"{s.requests} ({s.rps:.1f} req/s)",
        "errors": s.errors,
        "latency, ms": ", ".join(f"{k} {v:.1f}" for k, v in latency.items() if v is not None),
        "time in model, mean ms": _r(s.model_mean_ms),
        "CPU, % of a core": _r(s.cpu_percent),
    }


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 2)

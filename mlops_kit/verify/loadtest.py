"""Load tests: drive an endpoint with a bounded load, measure it, judge it against SLOs.

The generator is locust used as a library: an ``Environment`` with one ``FastHttpUser`` class,
started with ``runner.start(users, spawn_rate)``, one gevent greenlet per simulated user. Importing
locust monkeypatches the whole process through gevent, which hangs a Jupyter kernel (its ZMQ
threads and locks stop working; measured: the cell never returns). So the generator always runs
in a child process that patches first and imports second (:func:`run_load` starts it, shows a
progress bar from its progress lines and reads its samples back).

Every run is bounded three ways — duration, users and a total request cap — checked against
:class:`LoadLimits`; the child stops itself at the first bound reached, and the parent kills it if
it overstays. Only loopback hosts are loaded unless ``allow_remote=True``.

Latency percentiles are exact (every sample is kept) and taken over successful (2xx) answers;
errors are counted by HTTP status, or by exception name when no answer came.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import ipaddress
import json
import math
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import numpy as np

from mlops_kit.errors import ConfigError, MissingDependencyError, ParameterError, ToolkitError

if TYPE_CHECKING:
    import pandas as pd

    from mlops_kit.project import Project
    from mlops_kit.promote.approvals import PromotionRequest
    from mlops_kit.settings import Settings
    from mlops_kit.verify.monitoring import ServerFigures

__all__ = [
    "EndpointUnavailable",
    "LoadLimits",
    "LoadSpec",
    "LoadTestError",
    "LoadTestResult",
    "LoadTestRun",
    "RemoteLoadRefused",
    "Slo",
    "SloFailed",
    "SloVerdict",
    "check_host",
    "enforce",
    "evaluate",
    "load_test",
    "record",
    "run_load",
    "slo_from",
]

TAG_KEY = "loadtest"
"""Registry tags are ``mlops.loadtest.<environment>.<figure>``."""
PERCENTILES = (50, 90, 95, 99)

# Started with gevent patched before anything else is imported (ssl, threading, sockets).
_CHILD = (
    "from gevent import monkey; monkey.patch_all()\n"
    "import sys\n"
    "from mlops_kit.verify.loadtest import _child_main\n"
    "sys.exit(_child_main())\n"
)
_STARTUP_ALLOWANCE = 30.0
"""Seconds the child may take to import locust and report in, on top of the run's own bound."""
_PROGRESS_EVERY = 0.25


# -- errors (candidates for mlops_kit.errors) ----------------------------------------------------


class LoadTestError(ToolkitError):
    """A load test could not run or did not finish: no figures to judge."""


class EndpointUnavailable(LoadTestError):
    """The endpoint to load does not answer, or refuses the request body, before the load starts."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"load test not started: {url} {reason}")
        self.url = url
        self.reason = reason


class RemoteLoadRefused(ConfigError):
    """A load test was aimed at a host that is not loopback without ``allow_remote=True``."""

    def __init__(self, url: str, host: str, detail: str = "") -> None:
        super().__init__(
            f"refusing to load {url}: {host!r} is not a loopback address{detail}; load tests "
            "only target this machine unless allowed (allow_remote=True, or load_test.allow_remote "
            "in the project file) — and only aim them at systems you are entitled to load"
        )
        self.url = url
        self.host = host


class SloFailed(ToolkitError):
    """A load test missed its service-level objectives; ``verdict`` holds the figures."""

    def __init__(self, message: str, verdict: object | None = None) -> None:
        super().__init__(message)
        self.verdict = verdict


# -- bounds and objectives -----------------------------------------------------------------------


@dataclass(frozen=True)
class LoadLimits:
    """Hard bounds no load test may exceed, whatever it is asked."""

    max_users: int = 100
    """Simulated users (concurrent connections) at most."""
    max_duration_s: float = 300.0
    """Seconds of load at most."""
    max_requests: int = 500_000
    """Requests sent at most, over the whole run."""
    request_timeout_s: float = 5.0
    """Seconds a request may take before it counts as an error (connect and read alike)."""


@dataclass(frozen=True)
class Slo:
    """Service-level objectives a load test is judged against."""

    p99_ms: float = 250.0
    """99th percentile latency of successful requests, at most, in milliseconds."""
    max_error_rate: float = 0.01
    """Share of requests that fail (non-2xx or no answer), at most."""
    min_rps: float = 10.0
    """Completed requests per second, at least."""


def _section(settings: Settings | None) -> Any:
    # ``load_test`` is an optional settings section; without it the built-in defaults hold.
    return getattr(settings, "load_test", None) if settings is not None else None


def limits_from(settings: Settings | None) -> LoadLimits:
    """The configured bounds (the project file's ``load_test:`` section), else the defaults."""
    section = _section(settings)
    if section is None:
        return LoadLimits()
    return LoadLimits(
        **{f.name: getattr(section, f.name) for f in fields(LoadLimits) if hasattr(section, f.name)}
    )


def slo_from(
    settings: Settings | None = None,
    *,
    p99_ms: float | None = None,
    max_error_rate: float | None = None,
    min_rps: float | None = None,
) -> Slo:
    """Objectives: an argument given wins, else the project file's ``load_test:``, else defaults."""
    section = _section(settings)
    base = Slo(
        **{f.name: getattr(section, f.name) for f in fields(Slo) if hasattr(section, f.name)}
    )
    given = {"p99_ms": p99_ms, "max_error_rate": max_error_rate, "min_rps": min_rps}
    values = {**asdict(base), **{k: v for k, v in given.items() if v is not None}}
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
            raise ParameterError(name, f"must be a number, not {value!r}")
    if values["p99_ms"] <= 0:
        raise ParameterError("p99_ms", f"must be positive, not {values['p99_ms']!r}")
    if not 0 <= values["max_error_rate"] <= 1:
        raise ParameterError(
            "max_error_rate", f"must be between 0 and 1, not {values['max_error_rate']!r}"
        )
    if values["min_rps"] < 0:
        raise ParameterError("min_rps", f"must not be negative, not {values['min_rps']!r}")
    return Slo(**{k: float(v) for k, v in values.items()})


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

    @property
    def hard_deadline_s(self) -> float:
        """Seconds after which the parent kills the generator: the run's bound plus allowances."""
        return (
            self.duration_s + (self.timeout_s or LoadLimits.request_timeout_s) + _STARTUP_ALLOWANCE
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


# -- results -------------------------------------------------------------------------------------


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
class LoadTestResult:
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


# -- running the generator -----------------------------------------------------------------------


def preflight(url: str, body: str, timeout: float) -> None:
    """One request before the load: fail fast (EndpointUnavailable) if it is not answered 2xx."""
    import httpx

    from mlops_kit.verify.v2 import error_message

    try:
        with httpx.Client(timeout=timeout, trust_env=False) as client:
            response = client.post(
                url, content=body.encode(), headers={"Content-Type": "application/json"}
            )
    except httpx.TimeoutException:
        raise EndpointUnavailable(url, f"did not answer within {timeout:g} s") from None
    except httpx.HTTPError as exc:
        raise EndpointUnavailable(
            url,
            f"does not answer ({type(exc).__name__}: {exc}); is it deployed and running? "
            "(`mlops-kit status`)",
        ) from None
    if not 200 <= response.status_code < 300:
        raise EndpointUnavailable(
            url, f"answered HTTP {response.status_code}: {error_message(response)}"
        )


def run_load(
    spec: LoadSpec,
    *,
    limits: LoadLimits | None = None,
    allow_remote: bool = False,
    progress: bool = True,
    check_first: bool = True,
) -> LoadTestResult:
    """Load ``spec.url`` as ``spec`` says, within ``limits``; blocks until the load is over.

    ``check_first`` sends one request first and raises EndpointUnavailable unless it gets a 2xx
    answer. The run never outlasts ``spec.duration_s`` by more than a request timeout (plus
    the generator's start-up); LoadTestError if the generator fails or has to be killed.
    """
    spec = spec.checked(limits or LoadLimits())
    check_host(spec.url, allow_remote=allow_remote)
    if importlib.util.find_spec("locust") is None:
        raise MissingDependencyError("locust", "load")
    if check_first:
        preflight(spec.url, spec.body, min(spec.timeout_s or 5.0, 5.0))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    # The child must import this very package, also from a checkout that is not installed.
    package_root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    # No files: the plan goes in on stdin, progress lines and then the samples come out on
    # stdout, diagnostics on stderr.
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=True,
    )
    try:
        assert proc.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.write(json.dumps(asdict(spec)).encode())
            proc.stdin.close()
        samples, log = _follow(proc, spec, progress)
    finally:
        _kill(proc)
    if proc.returncode != 0 or samples is None:
        tail = "\n".join(log.decode(errors="replace").strip().splitlines()[-15:])
        raise LoadTestError(
            f"the load generator failed (exit code {proc.returncode}); its last output:\n"
            + (tail or "(none)")
        )
    return _read_samples(spec, samples)


def _follow(
    proc: subprocess.Popen[bytes], spec: LoadSpec, progress: bool
) -> tuple[bytes | None, bytes]:
    """Show the child's progress until it exits; kill it past the hard deadline.

    Returns the samples it sent (None if it sent none) and the end of its stderr.
    """
    from tqdm import tqdm

    assert proc.stdout is not None and proc.stderr is not None
    deadline = time.monotonic() + spec.hard_deadline_s
    bar = tqdm(
        total=round(spec.duration_s, 1),
        unit="s",
        desc=f"load {spec.users} users",
        disable=not progress,
        file=sys.stdout,
        leave=True,
        bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total:.1f} s{postfix}",
        mininterval=0.5,
    )
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    selector.register(proc.stderr, selectors.EVENT_READ)
    out, log = b"", b""
    samples_size: int | None = None
    open_streams = 2
    refresh_every = 0.5 if sys.stdout.isatty() else 1.0
    shown = 0.0
    try:
        while open_streams:
            if time.monotonic() > deadline:
                raise LoadTestError(
                    f"the load generator did not stop within {spec.hard_deadline_s:.0f} s; "
                    "killed it"
                )
            for key, _ in selector.select(timeout=0.2):
                chunk = os.read(key.fd, 1 << 20)
                if not chunk:
                    selector.unregister(key.fileobj)
                    open_streams -= 1
                elif key.fileobj is proc.stderr:
                    log = (log + chunk)[-20_000:]
                else:
                    out += chunk
            while samples_size is None and b"\n" in out:
                line, out = out.split(b"\n", 1)
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    state = json.loads(line)
                    if "samples" in state:
                        samples_size = int(state["samples"])
                        break
                    bar.n = min(round(float(state["t"]), 1), bar.total)
                    rps = state["n"] / state["t"] if state["t"] > 0 else 0.0
                    bar.set_postfix_str(
                        f"{state['u']} users, {state['n']} requests, {rps:.0f} req/s, "
                        f"{state['e']} errors",
                        refresh=False,
                    )
            # A notebook keeps every refresh as an output line in the saved file: refresh seldom.
            if time.monotonic() - shown >= refresh_every:
                bar.refresh()
                shown = time.monotonic()
        proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
    except subprocess.TimeoutExpired:
        raise LoadTestError("the load generator closed its output but did not exit") from None
    finally:
        selector.close()
        bar.close()
    if samples_size is None or len(out) < samples_size:
        return None, log
    return out[:samples_size], log


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()


def _read_samples(spec: LoadSpec, samples: bytes) -> LoadTestResult:
    with np.load(io.BytesIO(samples), allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
        return LoadTestResult.from_samples(
            spec,
            start=data["start"],
            latency=data["latency"],
            status=data["status"],
            kinds=list(meta["kinds"]),
            elapsed_s=meta["elapsed_s"],
            stopped_by=meta["stopped_by"],
            started_at=meta["started_at"],
            users_at=[(float(t), int(u)) for t, u in meta["users_at"]],
            generator_cpu_s=meta.get("cpu_s"),
        )


def _child_main() -> int:
    """The generator process: locust users against the URL of the spec read from stdin.

    Runs with gevent's monkeypatching already applied (see ``_CHILD``). Prints one JSON progress
    line every quarter second — elapsed ``t``, requests ``n``, errors ``e``, users ``u`` — then
    ``{"samples": size}`` and that many bytes: every sample, as an ``.npz`` archive.
    """
    import logging
    from time import perf_counter

    import gevent
    from locust import FastHttpUser, constant, constant_throughput, task
    from locust.env import Environment
    from locust.exception import StopUser

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    spec = LoadSpec(**json.loads(sys.stdin.buffer.read()))
    timeout = spec.timeout_s or LoadLimits.request_timeout_s
    cap = spec.max_requests or LoadLimits.max_requests
    # A last resort: whatever happens, this process ends (SIGALRM's default action kills it).
    signal.alarm(math.ceil(spec.duration_s + timeout + 20))

    parsed = urlparse(spec.url)
    path = parsed.path + (f"?{parsed.query}" if parsed.query else "")
    body = spec.body.encode()
    headers = {"Content-Type": "application/json"}
    rec = _Samples(cap)

    class Infer(FastHttpUser):
        host = f"{parsed.scheme}://{parsed.netloc}"
        wait_time = constant_throughput(spec.rate / spec.users) if spec.rate else constant(0)
        network_timeout = timeout
        connection_timeout = timeout
        max_retries = 0

        @task
        def infer(self) -> None:
            if rec.stopped or rec.sent >= cap:
                raise StopUser()
            rec.sent += 1
            began = perf_counter()
            # Kept minimal on purpose: the generator shares the machine with the server.
            # bytes, encoded once: locust's hint says str, geventhttpclient sends bytes as they are
            response = self.client.request(
                "POST",
                path,
                data=body,  # type: ignore[arg-type]
                headers=headers,
                name="infer",
            )
            rec.add(began - rec.origin, perf_counter() - began, response)

    env = Environment(user_classes=[Infer])
    runner = env.create_local_runner()
    started_at = datetime.now(UTC).isoformat(timespec="milliseconds")
    cpu_before = _cpu_seconds()
    rec.origin = perf_counter()
    runner.start(spec.users, spawn_rate=spec.spawn_rate)
    users_at: list[tuple[float, int]] = []
    stopped_by = "duration"
    next_report = 0.0
    while True:
        now = perf_counter() - rec.origin
        if not users_at or users_at[-1][1] != runner.user_count:
            users_at.append((round(now, 3), runner.user_count))
        if now >= spec.duration_s:
            break
        if rec.sent >= cap:
            stopped_by = "max_requests"
            break
        if now >= next_report:
            _report(now, rec.count, rec.errors, runner.user_count)
            next_report = now + _PROGRESS_EVERY
        gevent.sleep(0.02)
    elapsed = perf_counter() - rec.origin
    cpu = _cpu_seconds() - cpu_before
    done, errors = rec.count, rec.errors  # requests in flight now are cut off, not counted
    rec.stopped = True  # no user sends another while the runner stops them one by one
    runner.quit()
    meta = {
        "kinds": rec.kinds,
        "elapsed_s": elapsed,
        "stopped_by": stopped_by,
        "started_at": started_at,
        "users_at": users_at,
        "cpu_s": cpu,
    }
    _report(elapsed, done, errors, 0)
    packed = io.BytesIO()
    np.savez(
        packed,
        start=rec.start[:done],
        latency=rec.latency[:done],
        status=rec.status[:done],
        meta=np.asarray(json.dumps(meta)),
    )
    sys.stdout.write(json.dumps({"samples": packed.getbuffer().nbytes}) + "\n")
    sys.stdout.flush()
    sys.stdout.buffer.write(packed.getbuffer())
    sys.stdout.buffer.flush()
    return 0


def _cpu_seconds() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _report(t: float, n: int, e: int, u: int) -> None:
    sys.stdout.write(json.dumps({"t": round(t, 2), "n": n, "e": e, "u": u}) + "\n")
    sys.stdout.flush()


class _Samples:
    """Preallocated sample arrays: recording a request costs three stores and two increments."""

    def __init__(self, cap: int) -> None:
        self.start = np.zeros(cap, dtype=np.float64)
        self.latency = np.zeros(cap, dtype=np.float64)
        self.status = np.zeros(cap, dtype=np.int32)
        self.kinds: list[str] = []
        self.sent = 0
        self.stopped = False
        self.count = 0
        self.errors = 0
        self.origin = 0.0

    def add(self, start: float, latency: float, response: Any) -> None:
        code = response.status_code or 0
        if not 200 <= code < 300:
            self.errors += 1
            if not code:
                error = getattr(response, "error", None)
                kind = type(error).__name__ if error is not None else "no answer"
                if kind not in self.kinds:
                    self.kinds.append(kind)
                code = -(self.kinds.index(kind) + 1)
        i = self.count
        self.start[i], self.latency[i], self.status[i] = start, latency, code
        self.count = i + 1


# -- an environment's endpoint -------------------------------------------------------------------


@dataclass(frozen=True)
class LoadTestRun:
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


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def request_body(project: Project, version: str) -> str:
    """A V2 request body from the registered version's saved input example."""
    from mlflow.models import Model

    from mlops_kit.registry.client import Registry
    from mlops_kit.verify.v2 import encode_dataframe

    path = str(Registry(project).local_path(version))
    example = Model.load(path).load_input_example(path)
    if example is None:
        raise LoadTestError(
            f"{project.model_name} v{version} has no saved input example to send; log the "
            "model with input_example=..."
        )
    import pandas as pd

    frame = example if isinstance(example, pd.DataFrame) else pd.DataFrame(example)
    return json.dumps(encode_dataframe(frame))


def load_test(
    project: Project,
    environment: str,
    *,
    users: int = 10,
    spawn_rate: float = 10.0,
    duration_s: float = 5.0,
    rate: float | None = None,
    max_requests: int | None = None,
    allow_remote: bool | None = None,
    progress: bool = True,
) -> LoadTestRun:
    """Load-test what ``environment`` serves, with server metrics scraped before and after.

    The request is the served version's own input example. Raises EndpointUnavailable at once if
    nothing is served or the endpoint does not answer; bounds come from :func:`limits_from`.
    """
    from mlops_kit import targets
    from mlops_kit.verify.monitoring import MetricsSnapshot, scrape, server_figures

    settings = project.settings
    if allow_remote is None:
        allow_remote = bool(getattr(_section(settings), "allow_remote", False))
    model = project.model_name
    with targets.for_environment(settings, environment) as target:
        status = target.status(model)
        if status is None or not status.ready or not status.endpoint or not status.version:
            detail = "is not deployed" if status is None else (status.detail or "is not ready")
            where = status.endpoint if status and status.endpoint else f"{environment}/{model}"
            raise EndpointUnavailable(where, f"{detail} (environment {environment!r})")
        server = getattr(target, "server", None)
        record = server(model) if callable(server) else None
        metrics_url = getattr(record, "metrics_url", None)
    from mlops_kit.verify.v2 import infer_url

    url = infer_url(status.endpoint, model)
    spec = LoadSpec(
        url=url,
        body=request_body(project, status.version),
        users=users,
        spawn_rate=spawn_rate,
        duration_s=duration_s,
        rate=rate,
        max_requests=max_requests,
    )
    limits = limits_from(settings)
    spec.checked(limits)  # refuse bad parameters before touching the server
    before: MetricsSnapshot | None = None
    note = (
        ""
        if metrics_url
        else f"target {settings.environment(environment).target!r} exposes no metrics URL"
    )
    if metrics_url:
        try:
            before = scrape(metrics_url)
        except ToolkitError as exc:
            note = str(exc)
    result = run_load(spec, limits=limits, allow_remote=allow_remote, progress=progress)
    figures = None
    if before is not None and metrics_url:
        try:
            figures = server_figures(before, scrape(metrics_url), model)
        except ToolkitError as exc:
            note = str(exc)
        else:
            # The scrapes also span the generator's start-up, when the server idles: rates are
            # per second of load.
            figures = replace(figures, seconds=result.elapsed_s)
    return LoadTestRun(environment, model, status.version, url, result, figures, note)


# -- the verdict ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SloCheck:
    """One objective against its measurement."""

    name: str
    objective: str
    measured: float | None
    passed: bool
    reason: str


@dataclass(frozen=True)
class SloVerdict:
    """Pass or fail of a load test against its objectives, with the reason for each failure."""

    passed: bool
    reasons: list[str]
    """One line per objective missed (empty when passed)."""
    slo: Slo
    checks: tuple[SloCheck, ...]
    p99_ms: float | None
    error_rate: float
    rps: float
    requests: int
    environment: str | None = None

    def summary(self) -> str:
        """One line: verdict, figures and reasons."""
        head = "PASSED" if self.passed else "FAILED"
        where = f" in {self.environment}" if self.environment else ""
        p99 = "n/a" if self.p99_ms is None else f"{self.p99_ms:.1f} ms"
        tail = f": {'; '.join(self.reasons)}" if self.reasons else ""
        return (
            f"SLO {head}{where}: p99 {p99}, {self.rps:.1f} req/s, errors {self.error_rate:.2%} "
            f"over {self.requests} requests{tail}"
        )

    def raise_for_failure(self) -> None:
        """SloFailed naming every missed objective, unless all were met."""
        if not self.passed:
            where = f" in {self.environment}" if self.environment else ""
            raise SloFailed(f"load test{where} missed its SLO: " + "; ".join(self.reasons), self)

    def table(self) -> pd.DataFrame:
        """Objective, measurement and outcome per check."""
        import pandas as pd

        return pd.DataFrame(
            [
                {
                    "objective": f"{c.name} {c.objective}",
                    "measured": c.measured,
                    "result": "pass" if c.passed else "FAIL",
                }
                for c in self.checks
            ]
        ).set_index("objective")

    def tags(self, environment: str) -> dict[str, str]:
        """Registry tags ``mlops.loadtest.<environment>.*`` (read into promotion evidence)."""
        from mlops_kit.train.training import TAG_PREFIX

        prefix = f"{TAG_PREFIX}{TAG_KEY}.{environment}."
        tags = {
            "verdict": "passed" if self.passed else "failed",
            "p99_ms": "" if self.p99_ms is None else f"{self.p99_ms:.2f}",
            "rps": f"{self.rps:.1f}",
            "error_rate": f"{self.error_rate:.4f}",
            "requests": str(self.requests),
            "slo": f"p99<={self.slo.p99_ms:g}ms errors<={self.slo.max_error_rate:g} "
            f"rps>={self.slo.min_rps:g}",
            "reasons": "; ".join(self.reasons)[:1000] or "all objectives met",
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        return {prefix + k: v for k, v in tags.items()}

    def to_dict(self) -> dict[str, Any]:
        """Plain data for evidence and reports."""
        return {
            "verdict": "passed" if self.passed else "failed",
            "environment": self.environment,
            "p99_ms": None if self.p99_ms is None else round(self.p99_ms, 2),
            "rps": round(self.rps, 1),
            "error_rate": round(self.error_rate, 4),
            "requests": self.requests,
            "slo": asdict(self.slo),
            "reasons": list(self.reasons),
        }


def evaluate(result: LoadTestResult | LoadTestRun, slo: Slo | None = None) -> SloVerdict:
    """Judge a load test against ``slo`` (default :class:`Slo`)."""
    slo = slo or Slo()
    environment = result.environment if isinstance(result, LoadTestRun) else None
    r = result.result if isinstance(result, LoadTestRun) else result
    p99 = r.p99_ms
    checks = []
    if p99 is None:
        checks.append(
            SloCheck(
                "p99 latency",
                f"<= {slo.p99_ms:g} ms",
                None,
                False,
                "no request succeeded, so there is no latency to judge",
            )
        )
    else:
        checks.append(
            SloCheck(
                "p99 latency",
                f"<= {slo.p99_ms:g} ms",
                round(p99, 2),
                p99 <= slo.p99_ms,
                f"p99 latency {p99:.1f} ms is above {slo.p99_ms:g} ms",
            )
        )
    errors = ", ".join(f"{k}: {n}" for k, n in r.by_status.items() if not k.startswith("2"))
    checks.append(
        SloCheck(
            "error rate",
            f"<= {slo.max_error_rate:.2%}",
            round(r.error_rate, 4),
            r.requests > 0 and r.error_rate <= slo.max_error_rate,
            f"error rate {r.error_rate:.2%} is above {slo.max_error_rate:.2%} ({errors})"
            if r.requests
            else "no request completed",
        )
    )
    checks.append(
        SloCheck(
            "throughput",
            f">= {slo.min_rps:g} req/s",
            round(r.rps, 1),
            r.rps >= slo.min_rps,
            f"throughput {r.rps:.1f} req/s is below {slo.min_rps:g} req/s",
        )
    )
    return SloVerdict(
        passed=all(c.passed for c in checks),
        reasons=[c.reason for c in checks if not c.passed],
        slo=slo,
        checks=tuple(checks),
        p99_ms=p99,
        error_rate=r.error_rate,
        rps=r.rps,
        requests=r.requests,
        environment=environment,
    )


def enforce(verdict: SloVerdict, fail_on_slo: bool) -> str:
    """Raise SloFailed for a failed verdict when ``fail_on_slo``; else return its summary line.

    Under papermill the raise fails the notebook (and ``mlops-kit run`` exits 1).
    """
    if not isinstance(fail_on_slo, bool):
        raise ParameterError("fail_on_slo", f"must be True or False, not {fail_on_slo!r}")
    if fail_on_slo:
        verdict.raise_for_failure()
    return verdict.summary()


def record(project: Project, run: LoadTestRun, verdict: SloVerdict) -> dict[str, Any]:
    """Tag the version with the verdict; attach it to the version's pending promotion request.

    Tags are ``mlops.loadtest.<environment>.verdict|p99_ms|rps|error_rate|...``. The evidence
    ``load_test`` goes to the newest pending request that promotes this version out of this
    environment, if there is one. Returns what was recorded where.
    """
    from mlops_kit.promote.promotion import Promotions
    from mlops_kit.registry.client import Registry

    tags = verdict.tags(run.environment)
    Registry(project).tag(run.version, tags)
    promotions = Promotions(project)
    matching = [
        r
        for r in promotions.pending()
        if r.candidate == run.version and r.from_env == run.environment
    ]
    request: PromotionRequest | None = None
    if matching:
        evidence = {
            **verdict.to_dict(),
            "environment": run.environment,
            "version": run.version,
            "users": run.result.users,
            "duration_s": run.result.duration_s,
            "latency_ms": run.result.latency_ms,
            "by_status": run.result.by_status,
            "server": run.server.to_dict() if run.server else None,
            "at": run.result.started_at,
        }
        request = promotions.attach_evidence("load_test", evidence, request_id=matching[-1].id)
    return {
        "model": f"{run.model_name} v{run.version}",
        "tags": tags,
        "promotion_request": request.id if request else None,
    }

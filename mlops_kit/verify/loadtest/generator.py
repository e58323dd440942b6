"""The load generator itself, run inside the child process: locust users against one URL.

locust is used as a library: an ``Environment`` with one ``FastHttpUser`` class, started with
``runner.start(users, spawn_rate)``, one gevent greenlet per simulated user. This module is only
imported in the child (see :mod:`.child`), after gevent's monkeypatching; the parent never
imports locust or gevent.
"""

from __future__ import annotations

import io
import json
import math
import signal
import sys
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse

import numpy as np

from mlops_kit.settings_loadtest import LoadLimits
from mlops_kit.verify.loadtest.spec import LoadSpec

_PROGRESS_EVERY = 0.25


def main() -> int:
    """The generator process: locust users against the URL of the spec read from stdin.

    Runs with gevent's monkeypatching already applied (see ``child._CHILD``). Prints one JSON
    progress line every quarter second — elapsed ``t``, requests ``n``, errors ``e``, users
    ``u`` — then ``{"samples": size}`` and that many bytes: every sample, as an ``.npz`` archive.
    """
    import logging
    from time import perf_counter

    import gevent
    from locust import FastHttpUser, constant, constant_throughput, task
    from locust.env import Environment
    from locust.exception import StopUser

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    spec = LoadSpec(**json.loads(sys.stdin.buffer.read()))
    defaults = LoadLimits()
    timeout = spec.timeout_s or defaults.request_timeout_s
    cap = spec.max_requests or defaults.max_requests
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

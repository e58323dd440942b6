"""A bounded loopback load for rollout tests: a few threads posting one-row requests.

Records every answer (HTTP status, the version that served it, its header) until stopped or
until ``max_requests`` were sent, whichever comes first, so a test never loads without end.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import httpx
import pandas as pd

from mlops_kit.verify import v2


@dataclass
class Answer:
    status: int
    version: str
    header: str


@dataclass
class Load:
    """``with Load(url, rows) as load: ...``: ``load.answers`` holds what clients saw."""

    url: str
    """The model endpoint (``.../v2/models/NAME``)."""
    rows: pd.DataFrame
    threads: int = 3
    max_requests: int = 3000
    pause: float = 0.005
    headers: dict[str, str] = field(default_factory=dict)
    answers: list[Answer] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._sent = 0
        self._workers = [threading.Thread(target=self._run, args=(i,)) for i in range(self.threads)]

    def _take(self) -> bool:
        with self._lock:
            if self._stop.is_set() or self._sent >= self.max_requests:
                return False
            self._sent += 1
            return True

    def _run(self, index: int) -> None:
        with httpx.Client(timeout=10, trust_env=False, headers=self.headers) as client:
            n = 0
            while self._take():
                row = self.rows.iloc[[(index + n) % len(self.rows)]]
                n += self.threads
                try:
                    r = client.post(self.url + "/infer", json=v2.encode_dataframe(row))
                    body = (
                        r.json()
                        if r.headers.get("content-type", "").startswith("application/json")
                        else {}
                    )
                    answer = Answer(
                        r.status_code,
                        str(body.get("model_version", "")),
                        r.headers.get("x-model-version", ""),
                    )
                except httpx.HTTPError as exc:
                    answer = Answer(0, "", type(exc).__name__)
                with self._lock:
                    self.answers.append(answer)
                time.sleep(self.pause)

    def __enter__(self) -> Load:
        for worker in self._workers:
            worker.start()
        deadline = time.monotonic() + 30
        while not self.answers and time.monotonic() < deadline:
            time.sleep(0.01)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=30)

    @property
    def failed(self) -> list[Answer]:
        return [a for a in self.answers if a.status != 200]

    def versions(self) -> set[str]:
        return {a.version for a in self.answers if a.status == 200}

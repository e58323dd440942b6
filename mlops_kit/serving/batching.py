"""Micro-batching of concurrent inference requests, safe by construction.

Requests reach :class:`Batcher` already validated and decoded, one by one, so a malformed
request is answered on its own and never joins a batch. The batcher coalesces the decoded
inputs of concurrent requests that can share a ``predict`` (same columns, dtypes and
parameters: :func:`batch_key`), runs one ``predict`` on their concatenation
(:func:`concat`) in a single worker thread, and hands each request its own rows of the output
(:func:`split`). If the batched ``predict`` raises, or its output cannot be split by rows,
each request of the batch is predicted alone, so only the culprit fails.

Batching assumes the model answers each row independently of the other rows in the same call,
as scikit-learn estimators do. Kept free of MLServer imports: it is plain asyncio, pandas and
numpy, unit-testable alone.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import json
import logging
import time
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "DEFAULT_MAX_BATCH_SIZE",
    "DEFAULT_MAX_BATCH_TIME",
    "Batcher",
    "Columns",
    "batch_key",
    "concat",
    "model_input",
    "row_count",
    "split",
]

DEFAULT_MAX_BATCH_SIZE = 64
"""Rows one batched ``predict`` takes at most, unless model settings say otherwise."""
DEFAULT_MAX_BATCH_TIME = 0.002
"""Seconds a batch waits for more requests at most, unless model settings say otherwise."""

logger = logging.getLogger(__name__)

PredictFn = Callable[[Any, dict[str, Any] | None], Any]
"""``predict(data, params)``: the model's own call, run in the batcher's worker thread, with
the data as submitted or concatenated (it makes :class:`Columns` a frame: :func:`model_input`)."""
OnBatch = Callable[[int, int, bool], None]
"""``on_batch(requests, rows, fell_back)``: told of every ``predict`` round, in the event loop."""


@dataclass(frozen=True)
class Columns:
    """A table as one 1-D array per column, made a DataFrame only when the model needs it.

    Cheaper than a DataFrame per request: building one costs about half a millisecond, and
    concatenating DataFrames compares their column indexes once per part.
    """

    arrays: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(next(iter(self.arrays.values()))) if self.arrays else 0

    def frame(self) -> pd.DataFrame:
        """The DataFrame a pandas codec makes of the same columns: one column per array.

        Columns of one numeric dtype become one 2-D block at once (a third of the time of a
        frame made column by column), under a column index made once per set of names.
        """
        arrays = list(self.arrays.values())
        dtype = arrays[0].dtype if arrays else None
        if dtype is None or dtype.kind not in "biuf" or any(a.dtype != dtype for a in arrays):
            return pd.DataFrame(self.arrays)
        block = np.column_stack(arrays) if len(arrays) > 1 else arrays[0].reshape(-1, 1)
        return pd.DataFrame(block, columns=_column_index(tuple(self.arrays)), copy=False)


@functools.lru_cache(maxsize=64)
def _column_index(names: tuple[str, ...]) -> pd.Index:
    """The column index of a frame of ``names`` (immutable, so frames may share it)."""
    return pd.DataFrame({name: [] for name in names}).columns


def model_input(data: Any) -> Any:
    """What the model is called with for ``data``: :class:`Columns` become a DataFrame."""
    return data.frame() if isinstance(data, Columns) else data


def row_count(data: Any) -> int | None:
    """Rows in a decoded model input, or None when it has no leading row dimension."""
    if isinstance(data, Columns | pd.DataFrame | pd.Series):
        return len(data)
    if isinstance(data, np.ndarray):
        return data.shape[0] if data.ndim else None
    if isinstance(data, dict) and data:
        counts = {
            row_count(value) if isinstance(value, np.ndarray) else None for value in data.values()
        }
        if len(counts) == 1:
            return counts.pop()
    return None


def batch_key(data: Any, params: dict[str, Any] | None = None) -> Hashable | None:
    """What a request must share with others to be predicted in one batch with them.

    Equal keys mean concatenating the inputs changes no column's name, order or dtype (so
    the model sees every value exactly as it would alone) and the call gets the same
    parameters. None means the request is predicted alone: inputs of another type, no rows,
    or parameters that are not plain JSON.
    """
    rows = row_count(data)
    if not rows:
        return None
    if params:
        try:
            params_key: str | None = json.dumps(params, sort_keys=True)
        except (TypeError, ValueError):
            return None
    else:
        params_key = None
    if isinstance(data, Columns):
        shape: Hashable = (
            "columns",
            tuple((name, array.dtype.str) for name, array in data.arrays.items()),
        )
    elif isinstance(data, pd.DataFrame):
        if not data.columns.is_unique:
            return None
        shape = ("df", tuple(data.columns), tuple(str(t) for t in data.dtypes))
    elif isinstance(data, pd.Series):
        shape = ("series", data.name, str(data.dtype))
    elif isinstance(data, np.ndarray):
        shape = ("nd", str(data.dtype), data.shape[1:])
    else:  # a dict of arrays, as row_count established
        shape = (
            "dict",
            tuple((name, str(value.dtype), value.shape[1:]) for name, value in data.items()),
        )
    return (shape, params_key)


def concat(parts: Sequence[Any]) -> Any:
    """One model input holding the rows of ``parts`` (inputs with equal :func:`batch_key`)."""
    first = parts[0]
    if len(parts) == 1:
        return first
    if isinstance(first, Columns):
        return Columns(
            {name: np.concatenate([part.arrays[name] for part in parts]) for name in first.arrays}
        )
    if isinstance(first, pd.DataFrame | pd.Series):
        return pd.concat(parts, ignore_index=True)
    if isinstance(first, np.ndarray):
        return np.concatenate(parts)
    return {name: np.concatenate([part[name] for part in parts]) for name in first}


def split(output: Any, rows: Sequence[int]) -> list[Any] | None:
    """``output`` cut into consecutive pieces of ``rows`` rows; None if it is not row-wise.

    Handles what models return: arrays, DataFrames, Series, lists and dicts of those. An
    output whose length is not the total number of rows (an aggregate, a scalar) is None:
    the caller then predicts each request alone.
    """
    total = sum(rows)
    bounds = np.cumsum([0, *rows]).tolist()
    spans = list(zip(bounds[:-1], bounds[1:], strict=True))
    if isinstance(output, pd.DataFrame | pd.Series):
        if len(output) != total:
            return None
        return [output.iloc[a:b].reset_index(drop=True) for a, b in spans]
    if isinstance(output, np.ndarray):
        if output.ndim == 0 or output.shape[0] != total:
            return None
        return [output[a:b] for a, b in spans]
    if isinstance(output, list):
        if len(output) != total:
            return None
        return [output[a:b] for a, b in spans]
    if isinstance(output, dict) and output:
        columns = {name: split(value, rows) for name, value in output.items()}
        if any(pieces is None for pieces in columns.values()):
            return None
        return [
            {name: pieces[i] for name, pieces in columns.items() if pieces is not None}
            for i in range(len(rows))
        ]
    return None


@dataclass(eq=False)
class _Job:
    data: Any
    rows: int
    key: Hashable | None
    params: dict[str, Any] | None
    future: asyncio.Future[Any]
    queued_at: float = field(default_factory=time.monotonic)


@dataclass
class _Outcome:
    value: Any = None
    error: BaseException | None = None
    batched: bool | None = None
    """Whether it came from a batched ``predict``; None if no ``predict`` ran."""


class Batcher:
    """Coalesces concurrent ``predict`` calls of one model into batched calls.

    One task gathers jobs and one worker thread runs the model, so the event loop keeps
    reading and decoding requests while a batch predicts, and the model is never called
    from two threads at once. A batch takes queued jobs with the first job's key, up to
    ``max_batch_size`` rows. It waits for more only when the previous batch held several
    requests (others are in flight) and then at most ``max_batch_time`` seconds after its
    first job was queued; a lone client's request is predicted at once.
    """

    def __init__(
        self,
        predict: PredictFn,
        *,
        max_batch_size: int,
        max_batch_time: float,
        name: str = "model",
        on_batch: OnBatch | None = None,
    ) -> None:
        self._predict = predict
        self._on_batch = on_batch
        self.max_batch_size = max(1, max_batch_size)
        self.max_batch_time = max(0.0, max_batch_time)
        self._name = name
        self._pending: collections.deque[_Job] = collections.deque()
        self._pending_rows = 0
        self._last_jobs = 0
        self._wakeup: asyncio.Event | None = None
        self._enough: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._closed = False
        self.batches = 0
        """Batched ``predict`` calls made so far (each may serve several requests)."""
        self.fallbacks = 0
        """Batches whose ``predict`` failed and were predicted request by request."""

    @property
    def closed(self) -> bool:
        """True once :meth:`close` began; later calls to :meth:`submit` are refused."""
        return self._closed

    async def submit(
        self, data: Any, params: dict[str, Any] | None = None, *, key: Hashable | None = None
    ) -> Any:
        """The model's output for ``data`` alone, predicted in a batch with others if it can.

        ``key`` defaults to :func:`batch_key`. Raises whatever the model raised for this
        request; RuntimeError if the batcher is closed.
        """
        if self._closed:
            raise RuntimeError(f"the batcher of {self._name} is closed")
        loop = asyncio.get_running_loop()
        if self._task is None:
            self._start(loop)
        assert self._wakeup is not None and self._enough is not None
        if key is None:
            key = batch_key(data, params)
        rows = row_count(data) or 0
        job = _Job(data, rows, key, params, loop.create_future())
        self._pending.append(job)
        self._pending_rows += rows
        self._wakeup.set()
        if self._pending_rows >= self.max_batch_size or len(self._pending) >= self._last_jobs:
            self._enough.set()
        return await job.future

    async def close(self) -> None:
        """Stop taking jobs, finish every job already taken, then stop the task and thread."""
        self._closed = True
        if self._wakeup is not None:
            self._wakeup.set()
        if self._enough is not None:
            self._enough.set()
        if self._task is not None:
            await asyncio.shield(self._task)
        if self._executor is not None:
            self._executor.shutdown(wait=False)

    # -- the gathering task ---------------------------------------------------------------

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._wakeup = asyncio.Event()
        self._enough = asyncio.Event()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"predict-{self._name}")
        self._task = loop.create_task(self._run(), name=f"batcher-{self._name}")

    async def _run(self) -> None:
        assert self._wakeup is not None
        loop = asyncio.get_running_loop()
        while True:
            if not self._pending:
                if self._closed:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            if self._should_wait():
                await self._wait_for_more()
            batch = self._take()
            if batch:
                await self._dispatch(loop, batch)

    def _should_wait(self) -> bool:
        first = self._pending[0]
        return (
            not self._closed
            and self.max_batch_time > 0
            and first.key is not None
            and self._last_jobs > 1
            and len(self._pending) < self._last_jobs
            and self._pending_rows < self.max_batch_size
        )

    async def _wait_for_more(self) -> None:
        assert self._enough is not None
        self._enough.clear()
        deadline = self._pending[0].queued_at + self.max_batch_time
        delay = deadline - time.monotonic()
        if delay <= 0:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await self._enough.wait()

    def _take(self) -> list[_Job]:
        """Jobs for the next ``predict``: the oldest job and those that can join it."""
        first = self._pending.popleft()
        self._pending_rows -= first.rows
        batch = [first]
        if first.key is not None:
            rows = first.rows
            kept: collections.deque[_Job] = collections.deque()
            while self._pending and rows < self.max_batch_size:
                job = self._pending.popleft()
                if job.key == first.key and rows + job.rows <= self.max_batch_size:
                    batch.append(job)
                    rows += job.rows
                    self._pending_rows -= job.rows
                else:
                    kept.append(job)
            kept.extend(self._pending)
            self._pending = kept
        # A request whose client went away needs no prediction.
        return [job for job in batch if not job.future.done()]

    async def _dispatch(self, loop: asyncio.AbstractEventLoop, batch: list[_Job]) -> None:
        self._last_jobs = len(batch)
        try:
            outcomes = await loop.run_in_executor(self._executor, self._predict_batch, batch)
        except asyncio.CancelledError:
            for job in batch:
                job.future.cancel()
            raise
        except Exception as exc:  # the thread could not run it at all
            outcomes = [_Outcome(error=exc)] * len(batch)
        for job, outcome in zip(batch, outcomes, strict=True):
            if job.future.done():
                continue
            if outcome.error is not None:
                job.future.set_exception(outcome.error)
            else:
                job.future.set_result(outcome.value)
        if len(batch) > 1:
            self.batches += 1
            fell_back = outcomes[0].batched is False
            self.fallbacks += fell_back
            if self._on_batch is not None:
                try:
                    self._on_batch(len(batch), sum(job.rows for job in batch), fell_back)
                except Exception:  # a metric must never stop the batching task
                    logger.exception("on_batch callback of %s failed", self._name)

    # -- in the worker thread ---------------------------------------------------------------

    def _predict_batch(self, batch: list[_Job]) -> list[_Outcome]:
        if len(batch) > 1:
            try:
                merged = concat([job.data for job in batch])
                output = self._predict(merged, batch[0].params)
                pieces = split(output, [job.rows for job in batch])
            except Exception:  # noqa: BLE001 - each request then finds out alone
                pieces = None
            if pieces is not None:
                return [_Outcome(value=piece, batched=True) for piece in pieces]
        return [self._predict_one(job) for job in batch]

    def _predict_one(self, job: _Job) -> _Outcome:
        try:
            return _Outcome(value=self._predict(job.data, job.params), batched=False)
        except Exception as exc:  # noqa: BLE001 - handed to the request's own caller
            return _Outcome(error=exc, batched=False)

"""The contract every alias event source keeps, and the watching thread they share.

A source reads a baseline on start, then compares each read of the registry with what it
last saw; only a difference is an event (level-triggered). Subclasses add what feeds the
thread besides its own timer: :mod:`~mlops_kit.registry.events.webhook` posts hints.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Self

from mlops_kit.closing import Closing
from mlops_kit.errors import ConfigError, RegistryError
from mlops_kit.registry.events.model import ALIASES, AliasEvent, Hint, Origin

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from mlops_kit.project import Project

logger = logging.getLogger(__name__)


class AliasEventSource(Closing):
    """Where alias events come from. The contract every source keeps:

    - :meth:`start` begins watching and returns once the current aliases are read (the
      baseline: aliases already set when watching starts yield no event). Idempotent.
    - :meth:`events` yields events in the order they were observed, blocking for the next;
      it returns after ``timeout`` seconds in total, or once the source is closed (events
      observed before closing are still yielded). One consumer at a time.
    - :meth:`close` stops watching and releases threads, sockets and registrations.
      Idempotent; also called on leaving a ``with`` block, which starts the source on entry.
    """

    kind: Origin

    def __init__(
        self,
        project: Project,
        model_name: str | None = None,
        aliases: tuple[str, ...] = ALIASES,
        *,
        interval: float | None = 1.0,
    ) -> None:
        if not aliases:
            raise ConfigError("alias events need at least one alias to watch")
        if interval is not None and interval <= 0:
            raise ConfigError(f"poll interval must be positive, got {interval}")
        self.project = project
        self.model_name = model_name or project.model_name
        self.aliases = tuple(aliases)
        self.interval = interval
        self._events: queue.Queue[AliasEvent | None] = queue.Queue()
        self._hints: queue.Queue[Hint | None] = queue.Queue()
        self._known: dict[str, str] = {}
        self._client: MlflowClient | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._started = False
        self._closed = False
        self._read_failing = False

    # -- the interface -------------------------------------------------------------------

    def start(self) -> Self:
        """Read the baseline and begin watching; RegistryError if the registry cannot be read."""
        if self._started:
            return self
        if self._closed:
            raise RegistryError("this alias event source is closed; create a new one")
        self._preflight()
        self._client = self.project.client
        baseline = self._read()
        if baseline is None:
            raise RegistryError(
                f"could not read the aliases of {self.model_name!r} from {self._uri()}"
            )
        self._known = baseline
        self._open()
        self._started = True
        self._thread = threading.Thread(
            target=self._loop, name=f"{self.kind}-alias-events", daemon=True
        )
        self._thread.start()
        logger.info(
            "watching aliases %s of %r by %s (%s)",
            ", ".join(self.aliases),
            self.model_name,
            self.kind,
            self._describe(),
        )
        return self

    def events(self, timeout: float | None = None) -> Iterator[AliasEvent]:
        """Yield events as observed, for ``timeout`` seconds at most (None: until closed)."""
        if not self._started and not self._closed:
            raise RegistryError("start the alias event source first (or use it in a with block)")
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return
            try:
                item = self._events.get(timeout=remaining)
            except queue.Empty:
                return
            if item is None:
                self._events.put(None)  # keep the end marker for the next call
                return
            yield item

    def close(self) -> None:
        """Stop watching and release everything the source holds; idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._started:
                self._release()
        finally:
            self._stopping.set()
            self._hints.put(None)
            if self._thread is not None:
                self._thread.join(timeout=10)
            self._events.put(None)

    @property
    def known(self) -> dict[str, str]:
        """The aliases as this source last saw them (alias -> version)."""
        return dict(self._known)

    def __enter__(self) -> Self:
        return self.start()

    # -- for subclasses ------------------------------------------------------------------

    def _preflight(self) -> None:  # noqa: B027 - optional hook
        """Fail fast, before anything is read or acquired, when the source cannot work."""

    def _open(self) -> None:  # noqa: B027 - optional hook
        """Acquire what the source needs beyond the polling thread."""

    def _release(self) -> None:  # noqa: B027 - optional hook
        """Release what :meth:`_open` acquired; must not raise for what is already gone."""

    def _describe(self) -> str:
        return f"every {self.interval} s" if self.interval else "no polling"

    def _uri(self) -> str:
        return self.project.tracking_uri

    # -- the watching thread: the only writer of ``_known`` --------------------------------

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                hint = self._hints.get(timeout=self.interval)
            except queue.Empty:
                hint = None
                if not self._stopping.is_set():
                    self._safely(self._poll)
                continue
            try:
                if hint is not None:
                    self._safely(self._on_hint, hint)
            finally:
                self._hints.task_done()

    def settled(self) -> bool:
        """True when every hint received so far has been handled (its re-read done)."""
        return self._hints.unfinished_tasks == 0

    def _safely(self, fn: Any, *args: Any) -> None:
        try:
            fn(*args)
        except Exception:
            logger.exception("alias event source %s failed handling a change", self.kind)

    def _poll(self) -> None:
        current = self._read()
        if current is not None:
            self._apply(current, "poll", None, datetime.now(UTC))

    def _on_hint(self, hint: Hint) -> None:
        current = self._read()
        if current is None:
            # The registry did not answer: trust the delivery for the alias it names.
            current = dict(self._known)
            if hint.version is None:
                current.pop(hint.alias, None)
            else:
                current[hint.alias] = hint.version
        # Only the alias the delivery names: other aliases' moves come with their own.
        self._apply(current, "webhook", hint.delivery_id, hint.received_at, (hint.alias,))

    def _apply(
        self,
        current: Mapping[str, str],
        origin: Origin,
        delivery_id: str | None,
        received_at: datetime,
        aliases: tuple[str, ...] | None = None,
    ) -> None:
        for alias in aliases or self.aliases:
            before, now = self._known.get(alias), current.get(alias)
            if before == now:
                continue
            if now is None:
                self._known.pop(alias, None)
            else:
                self._known[alias] = now
            self._events.put(
                AliasEvent(
                    model_name=self.model_name,
                    alias=alias,
                    version=now,
                    action="deleted" if now is None else "set",
                    received_at=received_at,
                    source=origin,
                    delivery_id=delivery_id,
                    previous=before,
                )
            )

    def _read(self) -> dict[str, str] | None:
        """The watched aliases now (alias -> version); None if the registry did not answer."""
        from mlflow.exceptions import MlflowException

        assert self._client is not None
        try:
            model = self._client.get_registered_model(self.model_name)
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                return {}
            self._read_failed(exc)
            return None
        except Exception as exc:  # connection errors surface as requests/OS exceptions
            self._read_failed(exc)
            return None
        if self._read_failing:
            logger.info("registry %s answers again", self._uri())
            self._read_failing = False
        aliases = model.aliases or {}
        return {a: str(v) for a, v in aliases.items() if a in self.aliases}

    def _read_failed(self, exc: Exception) -> None:
        if not self._read_failing:
            logger.warning("cannot read aliases from %s: %s", self._uri(), exc)
            self._read_failing = True
        return None


__all__ = ["AliasEventSource"]

"""One deadline-polling loop: call a predicate until it holds or the time is up."""

from __future__ import annotations

import time
from collections.abc import Callable

from mlops_kit.errors import WaitTimeout


def wait_until[T](
    predicate: Callable[[], T],
    *,
    timeout: float,
    interval: float = 0.1,
    what: str = "a condition",
) -> T:
    """Call ``predicate`` every ``interval`` seconds until it returns a truthy value; return it.

    The predicate is always called at least once, also with ``timeout <= 0``, and once more at
    the deadline. Exceptions it raises propagate at once. When ``timeout`` seconds pass without
    a truthy answer, raises :class:`~mlops_kit.errors.WaitTimeout` naming ``what``; callers
    that owe their own error type catch it and raise theirs ``from None``.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise WaitTimeout(what, timeout)
        time.sleep(min(interval, remaining))

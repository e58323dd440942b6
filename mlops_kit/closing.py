"""Objects that hold resources until :meth:`~Closing.close`, usable in a ``with`` block."""

from __future__ import annotations

import abc
from types import TracebackType
from typing import Self


class Closing(abc.ABC):
    """A mixin: ``with obj:`` gives ``obj`` and calls ``obj.close()`` on leaving, error or not.

    A subclass that must do something on entry (start watching, connect) overrides
    ``__enter__`` and returns ``self`` from it.
    """

    @abc.abstractmethod
    def close(self) -> None:
        """Release what the object holds; idempotent."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

"""Lifecycle hooks: the places users extend the pipeline without subclassing it.

``before_promote(request)`` runs before an approved request is merged; raising vetoes it.
``after_deploy(environment, spec, status)`` runs after a deploy or rollout is serving; raising
fails the verification, and a rollout is rolled back. Register in code with :func:`register`
or in a package with the entry-point group ``mlops_kit.promote.hooks`` (name = hook name).
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from mlops_kit.errors import ConfigError

ENTRY_POINT_GROUP = "mlops_kit.promote.hooks"
SPECS = ("before_promote", "after_deploy")

_registered: dict[str, list[Callable[..., Any]]] = {name: [] for name in SPECS}
_entry_points_loaded = False


def register(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``fn`` to the hook ``name``; returns ``fn`` so it can be used as a decorator."""
    if name not in SPECS:
        raise ConfigError(f"no hook named {name!r}; hooks: {', '.join(SPECS)}")
    _registered[name].append(fn)
    return fn


def unregister(name: str, fn: Callable[..., Any]) -> None:
    """Remove ``fn`` from the hook ``name`` (no error if absent)."""
    if fn in _registered.get(name, []):
        _registered[name].remove(fn)


def call(name: str, **kwargs: Any) -> None:
    """Run every implementation of ``name`` in registration order; exceptions propagate."""
    _load_entry_points()
    for fn in list(_registered[name]):
        fn(**kwargs)


def _load_entry_points() -> None:
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        register(ep.name, ep.load())

"""Deployment targets, found by name: built-ins plus entry points of group ``mlops_kit.targets``.

A plugin declares ``[project.entry-points."mlops_kit.targets"] name = "pkg.module:Class"``;
it is imported only when asked for, so an unused target's SDK is never imported.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from mlops_kit.errors import TargetError, TargetNotFound, ToolkitError
from mlops_kit.targets.base import (
    Capabilities,
    Check,
    DeploymentStatus,
    DeploymentTarget,
    SetupReport,
)

if TYPE_CHECKING:
    from mlops_kit.settings import Settings

ENTRY_POINT_GROUP = "mlops_kit.targets"

# Registered even when the package's entry points are missing (e.g. running from a checkout).
_BUILTINS = {
    "local": "mlops_kit.targets.local:LocalTarget",
    "kubernetes": "mlops_kit.targets.kubernetes:KubernetesTarget",
    "sagemaker": "mlops_kit.targets.sagemaker:SageMakerTarget",
}

_registry: dict[str, type[DeploymentTarget]] = {}


def register(name: str, cls: type[DeploymentTarget]) -> None:
    """Register ``cls`` as the target called ``name``, replacing any earlier one."""
    if not (isinstance(cls, type) and issubclass(cls, DeploymentTarget)):
        raise TypeError(f"{cls!r} is not a DeploymentTarget subclass")
    _registry[name] = cls


def _declared() -> dict[str, str]:
    """Import paths of the targets not yet imported: entry points override built-ins."""
    declared = dict(_BUILTINS)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        declared[ep.name] = ep.value
    return declared


def _load(name: str, path: str) -> type[DeploymentTarget]:
    module_name, _, attr = path.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except ToolkitError:
        raise
    except (ImportError, AttributeError) as exc:
        raise TargetError(
            f"deployment target {name!r} ({path}) could not be loaded: {exc}"
        ) from exc
    register(name, cls)
    return cls


def get(name: str) -> type[DeploymentTarget]:
    """The target class registered as ``name``; raises TargetNotFound listing known names."""
    if name in _registry:
        return _registry[name]
    path = _declared().get(name)
    if path is None:
        raise TargetNotFound(name, names())
    return _load(name, path)


def names() -> list[str]:
    """Names of every known target, imported or not, sorted."""
    return sorted(set(_registry) | set(_declared()))


def for_environment(settings: Settings, env_name: str) -> DeploymentTarget:
    """A ready-to-use target for the environment called ``env_name`` in ``settings``."""
    env = settings.environment(env_name)
    return get(env.target)(settings, env)


__all__ = [
    "Capabilities",
    "Check",
    "DeploymentStatus",
    "DeploymentTarget",
    "SetupReport",
    "for_environment",
    "get",
    "names",
    "register",
]

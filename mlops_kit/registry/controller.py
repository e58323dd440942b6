"""Event-driven deploys: when an environment's alias moves in the registry, deploy it.

Moving the ``staging`` alias to a version leads to a GitOps commit (trailer ``Triggered-By``)
and a sync, without minute-polling: the alias events come from MLflow registry webhooks when
the registry is an ``mlflow server`` (see :mod:`mlops_kit.registry.server`), else from a cheap
one-second poll. Measured latency (alias set → the environment serves the version) is in
``docs/events.md``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from mlops_kit.errors import PromotionRequired
from mlops_kit.gitops.deploy import DeployResult, deploy
from mlops_kit.registry.events import AliasEvent, AliasEventSource, alias_events
from mlops_kit.settings import require_project

if TYPE_CHECKING:
    from mlops_kit.project import Project

log = logging.getLogger(__name__)
ACTOR = "registry-events"


def follow(
    project: Project,
    environment: str = "staging",
    *,
    source: AliasEventSource | None = None,
    stop: threading.Event | None = None,
    interval: float = 1.0,
    on_deploy: Callable[[AliasEvent, DeployResult], None] | None = None,
) -> None:
    """Deploy every version the environment's alias is moved to, until ``stop`` is set.

    The alias has the environment's name (``staging``). A failed deploy is logged and the
    loop goes on; the next move (or ``mlops-kit sync``) can repair it. A production-kind
    environment is refused (PromotionRequired): moving its alias never deploys it.
    """
    require_project(project.settings, f"following {environment}")
    if project.settings.environment(environment).kind == "production":
        raise PromotionRequired(environment, "an alias move (`follow`)")
    stop = stop or threading.Event()
    src = source or alias_events(project, aliases=(environment,), interval=interval)
    with src:
        while not stop.is_set():
            for event in src.events(timeout=0.5):
                if event.alias != environment or event.action != "set" or event.version is None:
                    continue
                try:
                    result = deploy(
                        project,
                        environment,
                        event.version,
                        actor=ACTOR,
                        message=f"Deploy {event.model_name} v{event.version} to {environment} "
                        f"(alias moved)",
                        trailers={"Triggered-By": f"alias {event.alias} ({event.source})"},
                    )
                except Exception as exc:  # keep following: a later move may succeed
                    log.warning("deploy of v%s to %s failed: %s", event.version, environment, exc)
                    continue
                if on_deploy is not None:
                    on_deploy(event, result)
                if stop.is_set():
                    break

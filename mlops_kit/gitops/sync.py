"""Make a target match the GitOps repository: create, update, repair, delete — and keep doing it."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from mlops_kit import display, targets
from mlops_kit.gitops.repository import GitOpsRepo
from mlops_kit.settings import require_project

if TYPE_CHECKING:
    from mlops_kit.deployment import Candidate
    from mlops_kit.project import Project
    from mlops_kit.targets.base import DeploymentTarget

log = logging.getLogger(__name__)

ActionKind = Literal["create", "update", "repair", "delete", "unchanged"]


@dataclass(frozen=True)
class SyncAction:
    """What sync did (or found nothing to do) for one deployment."""

    kind: ActionKind
    model_name: str
    version: str | None
    detail: str = ""


@dataclass
class SyncReport(display.Rich):
    """One reconciliation of an environment against a GitOps commit."""

    environment: str
    commit: str
    actions: list[SyncAction] = field(default_factory=list)
    seconds: float = 0.0
    drift: list[str] = field(default_factory=list)
    """Registry aliases that disagree with the repository (reported, never followed)."""

    @property
    def changed(self) -> bool:
        """True when sync created, updated, repaired or deleted anything."""
        return any(a.kind != "unchanged" for a in self.actions)

    def summary(self) -> str:
        """One line per action, or ``in sync``; then any registry drift."""
        drift = "".join(f"\nwarning: {d}" for d in self.drift)
        if not self.changed:
            count = len(self.actions)
            return (
                f"{self.environment}: in sync at {self.commit[:10]} ({count} deployments)" + drift
            )
        lines = [
            f"{self.environment}: {a.kind} {a.model_name} v{a.version}"
            + (f" ({a.detail})" if a.detail else "")
            for a in self.actions
            if a.kind != "unchanged"
        ]
        return "\n".join(lines) + drift

    def _repr_html_(self) -> str:
        rows = [
            {"action": a.kind, "model": a.model_name, "version": a.version, "detail": a.detail}
            for a in self.actions
        ]
        head = display.paragraph(
            f"{display.esc(self.environment)} synced to <code>{display.esc(self.commit[:10])}"
            f"</code> in {self.seconds:.2f} s."
        )
        return head + (display.table(rows) if rows else "")


def sync(
    project: Project,
    environment: str,
    *,
    repo: GitOpsRepo | None = None,
    target: DeploymentTarget | None = None,
    check_aliases: bool = False,
) -> SyncReport:
    """Reconcile ``environment``'s target with the repo's ``environments/<env>/`` documents.

    Idempotent: a second run against the same commit restarts nothing and reports no change.
    Drift (a server down, another version loaded) is repaired; deployments absent from the
    repo are deleted. ``check_aliases`` also reports a registry alias that disagrees with the
    repository (``report.drift``); the alias is never followed.
    """
    started = time.perf_counter()
    settings = project.settings
    settings.environment(environment)
    require_project(settings, f"syncing {environment}")
    repo = repo or GitOpsRepo.from_settings(settings)
    repo.ensure()
    desired = {spec.model_name: spec for spec in repo.read(environment)}
    target = target or targets.for_environment(settings, environment)
    observed = {status.model_name: status for status in target.list()}
    report = SyncReport(environment=environment, commit=repo.head())
    for name, spec in sorted(desired.items()):
        status = observed.get(name)
        kind: ActionKind
        if status is None:
            kind, detail = "create", ""
        elif not status.ready:
            kind, detail = "repair", status.detail or "not ready"
        elif status.version != spec.version:
            kind, detail = "update", f"was v{status.version}"
        elif status.candidate != spec.candidate:
            kind, detail = "update", _candidate_change(status.candidate, spec.candidate)
        else:
            report.actions.append(SyncAction("unchanged", name, spec.version))
            continue
        target.apply(spec)
        report.actions.append(SyncAction(kind, name, spec.version, detail))
    for name in sorted(set(observed) - set(desired)):
        target.delete(name)
        report.actions.append(SyncAction("delete", name, observed[name].version))
    from mlops_kit.gitops.drift import alias_drift

    if check_aliases:
        moved = alias_drift(project, environment, repo=repo)
        if moved is not None:
            report.drift.append(moved.message())
    report.seconds = time.perf_counter() - started
    return report


def _candidate_change(observed: Candidate | None, desired: Candidate | None) -> str:
    """``candidate v2 at 10% -> 50%`` and the like, for a sync action's detail."""

    def show(c: Candidate | None) -> str:
        if c is None:
            return "none"
        share = f"mirror {c.mirror_percent}%" if c.mirror else f"{c.weight}%"
        return f"v{c.version} at {share}"

    return f"candidate {show(observed)} -> {show(desired)}"


def watch(
    project: Project,
    environment: str,
    *,
    interval: float = 1.0,
    stop: threading.Event | None = None,
    max_iterations: int | None = None,
    on_report: Callable[[SyncReport], None] | None = None,
) -> None:
    """Reconcile every ``interval`` seconds until ``stop`` is set (self-heal).

    A failed round is logged and retried on the next one; it never ends the loop. Without a
    project file it refuses at once (ConfigError), before the first round.
    """
    require_project(project.settings, f"syncing {environment}")
    stop = stop or threading.Event()
    repo = GitOpsRepo.from_settings(project.settings)
    target = targets.for_environment(project.settings, environment)
    rounds = 0
    while not stop.is_set():
        try:
            report = sync(project, environment, repo=repo, target=target)
        except Exception as exc:  # keep watching: the next round may succeed
            log.warning("sync of %s failed: %s", environment, exc)
        else:
            if on_report is not None:
                on_report(report)
        rounds += 1
        if max_iterations is not None and rounds >= max_iterations:
            break
        stop.wait(interval)

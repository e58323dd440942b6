"""The audit trail: who requested, approved and rolled out what, when — read back from git."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from mlops_kit.errors import ConfigError
from mlops_kit.gitops import manifests
from mlops_kit.gitops.repository import ENVIRONMENTS_DIR, GitOpsRepo

if TYPE_CHECKING:
    import pandas as pd

    from mlops_kit.project import Project


@dataclass(frozen=True)
class Event:
    """One change to what an environment serves."""

    at: datetime
    environment: str
    version: str | None
    action: str
    actor: str
    request: str
    approved_by: str
    commit: str


def _action(subject: str, trailers: dict[str, str]) -> str:
    if "Rollback" in trailers:
        return "rollback"
    if "Reverts" in trailers:
        return "revert (failed rollout)" if "Request-Id" in trailers else "revert"
    if "Request-Id" in trailers:
        return "promotion"
    return "deploy" if not subject.startswith("Remove") else "remove"


def history(project: Project, model: str | None = None) -> list[Event]:
    """Every change to ``model``'s deployments, oldest first, with the version it left serving."""
    model = model or project.model_name
    repo = GitOpsRepo.from_settings(project.settings)
    repo.ensure()
    events = []
    commits = repo.history(model=model)
    # A rollout that failed its checks is reverted with the request's id: what it merged was
    # an attempt, never what the environment served.
    attempts = {
        c.trailers["Reverts"]
        for c in commits
        if "Reverts" in c.trailers and "Request-Id" in c.trailers
    }
    for commit in reversed(commits):
        envs = {commit.trailers.get("Environment")} - {None}
        for env in sorted(e for e in envs if e):
            text = repo.read_file(commit.sha, f"{ENVIRONMENTS_DIR}/{env}/{model}.yaml")
            version = manifests.spec_from_manifest(manifests.load(text)).version if text else None
            events.append(
                Event(
                    at=commit.timestamp,
                    environment=env,
                    version=version,
                    action=(
                        "failed attempt"
                        if commit.sha in attempts
                        else _action(commit.subject, commit.trailers)
                    ),
                    actor=commit.trailers.get("Actor", commit.author),
                    request=commit.trailers.get("Request-Id", ""),
                    approved_by=commit.trailers.get("Approved-By", ""),
                    commit=commit.sha,
                )
            )
    return events


def served_at(
    project: Project, environment: str, when: datetime, model: str | None = None
) -> str | None:
    """The version ``environment`` served at ``when`` (per the GitOps record), or None.

    Failed rollouts count as attempts: the version before them served throughout.
    """
    if when.tzinfo is None:
        raise ConfigError("give the time with a timezone, e.g. 2026-11-23T12:00:00+00:00")
    current = None
    for event in history(project, model):
        if event.environment != environment or event.at > when:
            continue
        if event.action != "failed attempt":
            current = event.version
    return current


def table(events: list[Event]) -> pd.DataFrame:
    """Events as a table."""
    import pandas as pd

    return pd.DataFrame(
        [
            {
                "at": e.at.strftime("%Y-%m-%d %H:%M:%S%z"),
                "environment": e.environment,
                "version": e.version or "-",
                "action": e.action,
                "actor": e.actor,
                "approved_by": e.approved_by,
                "request": e.request,
                "commit": e.commit[:10],
            }
            for e in events
        ]
    )

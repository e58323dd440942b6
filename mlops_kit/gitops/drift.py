"""Registry drift: an environment's alias in MLflow that disagrees with what the GitOps
repository says the environment serves (someone moved the alias by hand).

The repository is the record; the alias is a pointer the toolkit keeps in step with it. A
moved alias is reported by ``status`` and ``sync`` and never taken as a champion.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlops_kit.gitops.repository import GitOpsRepo
from mlops_kit.registry.client import Registry

if TYPE_CHECKING:
    from mlops_kit.project import Project


@dataclass(frozen=True)
class AliasDrift:
    """The alias ``environment`` points at ``alias_version``; GitOps says ``gitops_version``."""

    environment: str
    model_name: str
    alias_version: str | None
    gitops_version: str | None

    def message(self) -> str:
        said = f"v{self.gitops_version}" if self.gitops_version else "nothing"
        moved = f"v{self.alias_version}" if self.alias_version else "unset"
        return (
            f"{self.environment}: registry alias {self.environment!r} of {self.model_name} is "
            f"{moved} but the GitOps repository says {said} (moved outside the toolkit?); "
            "the repository is what runs, the alias is not trusted"
        )


def alias_drift(
    project: Project, environment: str, *, repo: GitOpsRepo | None = None
) -> AliasDrift | None:
    """The drift of ``environment``'s alias from the GitOps repository, or None."""
    repo = repo or GitOpsRepo.from_settings(project.settings)
    repo.ensure()
    spec = repo.get(environment, project.model_name)
    alias = Registry(project).by_alias(environment)
    wanted = spec.version if spec else None
    found = alias.version if alias else None
    if wanted == found:
        return None
    return AliasDrift(environment, project.model_name, found, wanted)


def served_version(
    project: Project, environment: str, repo: GitOpsRepo | None = None
) -> str | None:
    """What the GitOps repository says ``environment`` serves (None: nothing)."""
    repo = repo or GitOpsRepo.from_settings(project.settings)
    repo.ensure()
    spec = repo.get(environment, project.model_name)
    return spec.version if spec else None

"""Demo signing keys for tests: labelled ed25519 keys in the project's state dir, registered in
the GitOps repository's ``allowed_signers``."""

from __future__ import annotations

from pathlib import Path

from mlops_kit.gitops.repository import GitOpsRepo
from mlops_kit.project import Project
from mlops_kit.promote import signing
from mlops_kit.promote.signers import Signers

NAMES = ("alice", "bob", "carol")


def demo_signers(project: Project, names: tuple[str, ...] = NAMES) -> dict[str, Path]:
    """Create and register demo keys for ``names``; their private key paths by name."""
    repo = GitOpsRepo.from_settings(project.settings)
    repo.ensure()
    return Signers(repo).demo(project.state_dir, list(names), actor="tests")


def key(project: Project, name: str) -> Path:
    """The demo key of ``name`` (see :func:`demo_signers`)."""
    return signing.demo_key_path(project.state_dir, name)

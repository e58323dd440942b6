"""The ``allowed_signers`` file of the GitOps repository: who may sign decisions, with which key.

Adding a signer is a reviewed change: once the file names anyone, the change must carry the
signature of a listed signer other than the one added. The signature over the new file's text
is committed beside it (``allowed_signers.sig``) with the reviewer's name as a trailer.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mlops_kit.errors import ApprovalRefused, ConfigError
from mlops_kit.gitops.repository import GitOpsRepo
from mlops_kit.promote import signing
from mlops_kit.promote.signing import ALLOWED_SIGNERS, Signer

SIGNATURE_FILE = f"{ALLOWED_SIGNERS}.sig"


@dataclass
class Signers:
    """Read and change the GitOps repository's ``allowed_signers``."""

    repo: GitOpsRepo

    def text(self) -> str:
        """The file's text at the branch head ('' when there is none)."""
        return self.repo.read_file(self.repo.branch, ALLOWED_SIGNERS) or ""

    def all(self) -> list[Signer]:
        return signing.parse(self.text())

    def add(
        self,
        name: str,
        public_key: str,
        *,
        actor: str,
        reviewer_key: str | Path | None = None,
        reviewer: str | None = None,
    ) -> str | None:
        """Add ``public_key`` for ``name``; returns the commit (None if already there).

        The first signer is taken as the project's root of trust; every later change is signed
        by ``reviewer`` (default ``actor``), a listed signer other than ``name``.
        """
        signing.check_name(name)
        entry = Signer(name, signing.public_key(public_key))
        current = self.text()
        listed = signing.parse(current)
        if entry in listed:
            return None
        new_text = signing.render([*listed, entry])
        files: dict[str, str | None] = {ALLOWED_SIGNERS: new_text}
        trailers = {"Signer-Added": name}
        if listed:
            reviewer = (reviewer or actor).strip()
            if reviewer == name:
                raise ApprovalRefused(
                    ALLOWED_SIGNERS, reviewer, "a signer cannot review their own addition"
                )
            key = signing.signing_key(reviewer_key)
            if key is None:
                raise ApprovalRefused(
                    ALLOWED_SIGNERS,
                    reviewer,
                    "adding a signer needs the signature of a listed signer (--key)",
                )
            signature = signing.sign(new_text, key)
            signing.require(new_text, signature, reviewer, current, ALLOWED_SIGNERS)
            files[SIGNATURE_FILE] = signature
            trailers["Reviewed-By"] = reviewer
        return self.repo.commit_files(
            self.repo.branch,
            files,
            actor=actor,
            message=f"Allow {name} to sign decisions",
            trailers=trailers,
        )

    def demo(self, state_dir: Path, names: list[str], *, actor: str) -> dict[str, Path]:
        """Create labelled demo keys for ``names`` under ``state_dir/keys`` and list them.

        Only for the demo and tests: the keys sit unencrypted in the state directory. Each
        later name is reviewed by the first one's demo key.
        """
        if not names:
            raise ConfigError("name at least one demo signer")
        keys = {
            name: signing.create_key(
                signing.demo_key_path(state_dir, name), f"{name} {signing.DEMO_LABEL}"
            )
            for name in names
        }
        first = names[0]
        for name, key in keys.items():
            public = Path(f"{key}.pub").read_text()
            reviewer = first if name != first else (names[1] if len(names) > 1 else first)
            self.add(name, public, actor=actor, reviewer=reviewer, reviewer_key=keys[reviewer])
        return keys

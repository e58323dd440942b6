"""Branches beside the main one (promotion requests): create, commit to, merge, delete.

The operations :class:`~mlops_kit.gitops.repository.GitOpsRepo` offers on branches other than
its main branch, and the commit-and-push retry every change to any branch goes through; the
repository supplies the lock and the setup.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from contextlib import AbstractContextManager

from mlops_kit.errors import ConfigError, GitOpsError
from mlops_kit.gitops.commits import identity, merge_trailers
from mlops_kit.gitops.git import GitClone, check_relpath, error


class BranchOperations(GitClone, abc.ABC):
    """Promotion-request branches on the remote, for a repository that provides the hooks.

    Like every mutating operation of the repository, each holds the lock, starts from the
    remote's head and pushes before returning.
    """

    @abc.abstractmethod
    def ensure(self) -> None:
        """Create what is missing: remote, clone, main branch."""

    @abc.abstractmethod
    def _locked(self) -> AbstractContextManager[None]:
        """Hold the repository's exclusive lock."""

    @abc.abstractmethod
    def _fetched(self, ref: str) -> str:
        """Fetch, then resolve ``ref`` to a commit sha."""

    def create_branch(self, name: str, from_ref: str | None = None) -> str:
        """Create branch ``name`` on the remote at ``from_ref`` (default: the branch head)."""
        self._check_branch(name)
        with self._locked():
            self._fetch()
            if self._has_ref(f"refs/remotes/origin/{name}"):
                raise GitOpsError(f"branch {name!r} already exists")
            sha = self._resolve_local(from_ref or self.branch)
            self._git("push", "-q", "origin", f"{sha}:refs/heads/{name}")
            self._fetch()
            return sha

    def commit_files(
        self,
        branch: str,
        files: Mapping[str, str | None],
        *,
        actor: str,
        message: str,
        trailers: Mapping[str, str] | None = None,
    ) -> str | None:
        """Write (text) or delete (None) files on ``branch``, commit and push it.

        Returns the commit's sha, or None when the files already read so.
        """
        self._check_branch(branch)
        for relpath in files:
            check_relpath(relpath)
        trailers = merge_trailers({}, actor, trailers)
        return self._change(branch, files, actor=actor, message=message, trailers=trailers)

    def read_file(self, ref: str, relpath: str) -> str | None:
        """A file's text at ``ref`` (a branch on the remote, or any commit); None if absent."""
        check_relpath(relpath)
        return self._cat_files(self._fetched(ref), [relpath])[relpath]

    def list_branches(self, prefix: str = "") -> list[str]:
        """Names of the remote's branches starting with ``prefix``, sorted."""
        self.ensure()
        with self._locked():
            self._fetch()
        out = self._out("for-each-ref", "--format=%(refname:lstrip=3)", "refs/remotes/origin/")
        return sorted(n for n in out.splitlines() if n.startswith(prefix) and n != "HEAD")

    def merge(
        self,
        branch: str,
        *,
        actor: str,
        message: str,
        trailers: Mapping[str, str] | None = None,
        prefer_branch: bool = False,
    ) -> str:
        """Merge ``branch`` into the main branch with a ``--no-ff`` merge commit, pushed.

        ``prefer_branch`` settles conflicting hunks in the branch's favour (``-X theirs``):
        a promotion approved after another one landed still carries its own manifest.
        """
        self._check_branch(branch)
        text = self._message(message, merge_trailers({"Branch": branch}, actor, trailers))
        with self._locked():
            for _ in range(self.push_attempts):
                self._sync(self.branch)
                source = f"refs/remotes/origin/{branch}"
                if not self._has_ref(source):
                    raise GitOpsError(f"branch {branch!r} does not exist on the remote")
                if self._is_ancestor(source, "HEAD"):
                    raise GitOpsError(f"branch {branch!r} is already merged into {self.branch}")
                # git merge cannot read its message from stdin.
                message_file = self.work / ".git" / "MLOPS_KIT_MERGE_MSG"
                message_file.write_text(text)
                result = self._git(
                    *identity(actor), "merge", "-q", "--no-ff", "--no-edit",
                    "--cleanup=whitespace", f"--file={message_file}",
                    *(["-X", "theirs"] if prefer_branch else []), source, check=False,
                )  # fmt: skip
                if result.returncode != 0:
                    self._clear_pending()
                    raise error(
                        ["merge", "--no-ff", branch],
                        result.returncode,
                        result.stderr,
                        "resolve it on the branch",
                    )
                sha = self._out("rev-parse", "HEAD").strip()
                if self._push(self.branch):
                    return sha
            raise self._gave_up()

    def delete_branch(self, name: str) -> None:
        """Delete a branch from the remote; nothing happens if it is already gone."""
        self._check_branch(name)
        if name == self.branch:
            raise GitOpsError(f"refusing to delete the main branch {name!r}")
        with self._locked():
            self._fetch()
            if self._has_ref(f"refs/remotes/origin/{name}"):
                result = self._git("push", "-q", "origin", "--delete", name, check=False)
                if result.returncode != 0 and "remote ref does not exist" not in result.stderr:
                    raise error(
                        ["push", "origin", "--delete", name], result.returncode, result.stderr
                    )
                self._fetch()

    def _change(
        self,
        branch: str,
        files: Mapping[str, str | None],
        *,
        actor: str,
        message: str,
        trailers: dict[str, str],
    ) -> str | None:
        """Apply ``files`` on top of the remote ``branch``, commit and push; retry if beaten."""
        self.ensure()
        with self._locked():
            for _ in range(self.push_attempts):
                self._sync(branch)
                for relpath, text in files.items():
                    target = self.work / relpath
                    if text is None:
                        target.unlink(missing_ok=True)
                    else:
                        target.parent.mkdir(parents=True, exist_ok=True)
                        target.write_text(text)
                # The clone was clean after _sync: everything changed is ours to stage.
                self._git("add", "-A")
                if self._nothing_staged():
                    return None
                sha = self._commit(actor, message, trailers)
                if self._push(branch):
                    return sha
            raise self._gave_up()

    def _check_branch(self, name: str) -> None:
        self.ensure()
        result = self._git("check-ref-format", "--branch", name, check=False)
        if result.returncode != 0 or name.startswith("-") or name == "HEAD":
            raise ConfigError(f"{name!r} is not a valid branch name")


__all__ = ["BranchOperations"]

"""Git in a working clone: the subprocess runner, its error messages, the plumbing commands.

Every git process runs with a scrubbed environment (no ``GIT_DIR`` or identity from hooks
and CI), English messages and no password prompt; a failure becomes one
:class:`~mlops_kit.errors.GitOpsError` naming the command and what git said, with any
credentials in URLs redacted.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

from mlops_kit.errors import ConfigError, GitOpsError
from mlops_kit.gitops.commits import LOG_FORMAT, Commit, identity, parse_commit

_CREDENTIALS = re.compile(r"(://)[^/@\s]+@")
# Set by git hooks and CI: they would point git at another repository or override the
# actor's identity, which the toolkit sets per commit.
_SCRUBBED_ENV = frozenset(
    {
        "GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY",
        "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_COMMON_DIR", "GIT_NAMESPACE", "GIT_PREFIX",
        "GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_AUTHOR_DATE",
        "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL", "GIT_COMMITTER_DATE",
    }
)  # fmt: skip
_RETRYABLE = (
    "[rejected]",  # non-fast-forward: another clone pushed first
    "cannot lock ref",  # another push to the same remote is updating the ref right now
    "failed to update ref",
    "incorrect old value",
)


class GitClone:
    """Git commands in the working clone ``work`` of ``remote``, on a detached HEAD.

    The base of :class:`~mlops_kit.gitops.repository.GitOpsRepo`, which sets ``work`` and
    ``remote`` and decides when to lock, fetch and retry.
    """

    work: Path
    remote: str
    branch: str
    """The main branch, the one environments are read from."""
    push_attempts = 20
    """How often a rejected push (another clone pushed first) is redone on the new head."""
    command_timeout = 300.0
    """Seconds any single git command may take (fetch / push over a network)."""

    def _sync(self, branch: str) -> None:
        """Make the clone exactly the remote ``branch``, discarding anything left over.

        The clone works on a detached HEAD and pushes ``HEAD:<branch>``: no local branches
        to drift from the remote.
        """
        self._fetch()
        if not self._has_ref(f"refs/remotes/origin/{branch}"):
            raise GitOpsError(f"branch {branch!r} does not exist on the remote")
        self._clear_pending()
        self._git("checkout", "-q", "-f", "--detach", f"refs/remotes/origin/{branch}")
        self._git("clean", "-q", "-f", "-d", "-x")

    def _gave_up(self) -> GitOpsError:
        return GitOpsError(
            f"gave up after {self.push_attempts} attempts: the remote {redact(self.remote)} "
            "kept moving (other clones pushing)"
        )

    def _clear_pending(self) -> None:
        """Forget a merge or revert a crash or a conflict left half done."""
        git_dir = self.work / ".git"
        pending = ("MERGE_HEAD", "REVERT_HEAD", "CHERRY_PICK_HEAD", "sequencer")
        if any((git_dir / name).exists() for name in pending):
            self._git("reset", "-q", "--hard", check=False)
            self._git("revert", "--quit", check=False)
            shutil.rmtree(git_dir / "sequencer", ignore_errors=True)

    def _fetch(self) -> None:
        self._git("fetch", "-q", "--prune", "origin")

    def _push(self, branch: str) -> bool:
        """Push HEAD to ``branch``; False if the remote moved on meanwhile (retry), else raise."""
        result = self._git("push", "-q", "origin", f"HEAD:refs/heads/{branch}", check=False)
        if result.returncode == 0:
            return True
        if rejected(result.stderr):
            time.sleep(0.01)
            return False
        raise error(["push", "origin", branch], result.returncode, result.stderr)

    def _resolve_local(self, ref: str) -> str:
        """A commit sha for a remote branch name, a sha or any revision; GitOpsError if none."""
        for candidate in (f"refs/remotes/origin/{ref}", ref):
            result = self._git(
                "rev-parse", "-q", "--verify", "--end-of-options", f"{candidate}^{{commit}}",
                check=False,
            )  # fmt: skip
            if result.returncode == 0:
                return result.stdout.strip()
        raise GitOpsError(f"no branch or commit {ref!r} in {redact(self.remote)}")

    def _has_ref(self, ref: str) -> bool:
        return self._git("rev-parse", "-q", "--verify", ref, check=False).returncode == 0

    def _is_ancestor(self, ancestor: str, descendant: str) -> bool:
        result = self._git("merge-base", "--is-ancestor", ancestor, descendant, check=False)
        return result.returncode == 0

    def _nothing_staged(self) -> bool:
        return self._git("diff", "--cached", "--quiet", check=False).returncode == 0

    def _log_one(self, sha: str) -> Commit:
        return parse_commit(self._out("log", "-1", f"--format={LOG_FORMAT}", sha))

    def _message(self, message: str, trailers: Mapping[str, str]) -> str:
        args = [f"--trailer={key}: {value}" for key, value in trailers.items()]
        return self._out("interpret-trailers", *args, input=message.rstrip("\n") + "\n")

    def _commit(self, actor: str, message: str, trailers: Mapping[str, str]) -> str:
        text = self._message(message, trailers)
        # "whitespace", not the default "strip": a message may start with "#123".
        self._git(*identity(actor), "commit", "-q", "--cleanup=whitespace", "-F", "-", input=text)
        return self._out("rev-parse", "HEAD").strip()

    def _cat_files(self, sha: str, paths: list[str]) -> dict[str, str | None]:
        """Text of each path at commit ``sha`` (None where absent), in one git process."""
        if not paths:
            return {}
        request = "".join(f"{sha}:{p}\n" for p in paths).encode()
        proc = self._run(["cat-file", "--batch"], self.work, request)
        if proc.returncode != 0:
            raise error(["cat-file", "--batch"], proc.returncode, proc.stderr.decode())
        out = proc.stdout
        texts: dict[str, str | None] = {}
        pos = 0
        for path in paths:
            end = out.index(b"\n", pos)
            header = out[pos:end].split()
            pos = end + 1
            if header[-1] == b"missing":
                texts[path] = None
                continue
            size = int(header[2])
            blob = out[pos : pos + size]
            pos += size + 1
            texts[path] = blob.decode() if header[1] == b"blob" else None
        return texts

    def _git(
        self,
        *args: str,
        cwd: Path | None = None,
        input: str | None = None,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        """Run git in the clone (or ``cwd``); GitOpsError with command and stderr on failure."""
        data = None if input is None else input.encode()
        proc = self._run(list(args), cwd or self.work, data)
        result = subprocess.CompletedProcess(
            proc.args, proc.returncode, proc.stdout.decode(), proc.stderr.decode()
        )
        if check and result.returncode != 0:
            raise error(list(args), result.returncode, result.stderr)
        return result

    def _out(self, *args: str, input: str | None = None) -> str:
        return self._git(*args, input=input).stdout

    def _run(
        self, args: list[str], cwd: Path, input: bytes | None
    ) -> subprocess.CompletedProcess[bytes]:
        env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED_ENV}
        env["GIT_TERMINAL_PROMPT"] = "0"  # fail rather than wait for a password nobody types
        env["LC_ALL"] = "C"  # git's messages in English: push rejections are recognized by text
        try:
            return subprocess.run(
                ["git", *args], cwd=cwd, input=input, capture_output=True, env=env,
                timeout=self.command_timeout, check=False,
            )  # fmt: skip
        except FileNotFoundError as exc:
            if not cwd.is_dir():
                raise GitOpsError(f"{cwd} does not exist (call ensure() first)") from exc
            raise GitOpsError("git is not installed (the GitOps repository needs it)") from exc
        except subprocess.TimeoutExpired as exc:
            raise GitOpsError(
                f"git {redact(' '.join(args))} timed out after {self.command_timeout:.0f} s"
            ) from exc


def check_relpath(relpath: str) -> None:
    """ConfigError unless ``relpath`` names a file inside the working tree (not ``.git``)."""
    parts = PurePosixPath(relpath).parts
    if (
        not parts
        or relpath.startswith("/")
        or any(p in ("..", ".") for p in parts)
        or parts[0] == ".git"
        or "\\" in relpath
    ):
        raise ConfigError(f"{relpath!r} is not a relative path inside the repository")


def normalize_remote(remote: str) -> str:
    """Absolute path for a local remote; URLs and ``host:path`` pass through."""
    if "://" in remote or re.match(r"^[^/]+:", remote):
        return remote
    return str(Path(remote).expanduser().resolve())


def rejected(stderr: str) -> bool:
    """Whether a push failed only because the remote moved on meanwhile (worth a retry)."""
    return any(s in stderr for s in _RETRYABLE)


def redact(text: str) -> str:
    """``text`` with the credentials of any URL in it replaced by ``***``."""
    return _CREDENTIALS.sub(r"\1***@", text)


def error(args: list[str], returncode: int, stderr: str, hint: str = "") -> GitOpsError:
    """The GitOpsError for a failed ``git <args>``: exit code, what git said, ``hint``."""
    said = " ".join(stderr.split()) or "(no output)"
    message = f"git {' '.join(args)} failed (exit {returncode}): {said}"
    if hint:
        message += f"; {hint}"
    return GitOpsError(redact(message))


__all__ = ["GitClone", "check_relpath", "error", "normalize_remote", "redact", "rejected"]

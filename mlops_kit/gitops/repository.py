"""A real git repository as the record of what runs where.

Layout: ``environments/<environment>/<model>.yaml`` on one branch (``main``), each file a
manifest from :mod:`mlops_kit.gitops.manifests`. Every change is a commit by the acting person with
trailers (``Model:``, ``Model-Version:``, ``Environment:``, ``Actor:``...) and is pushed at
once; the remote (a bare repository in the state directory by default) is the truth, the
working clone under ``<root>/work`` is a scratch area this module owns and resets freely.

Writers on one machine serialize on an ``flock`` at ``<root>/.lock``; writers with other
clones of the same remote are handled by retrying a rejected push on top of the new head.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from mlops_kit.deployment import DeploymentSpec
from mlops_kit.errors import ConfigError, GitOpsError
from mlops_kit.gitops import manifests
from mlops_kit.gitops.manifests import ManifestFormat

if TYPE_CHECKING:
    from mlops_kit.settings import Settings

ENVIRONMENTS_DIR = "environments"
README = """\
# GitOps repository

Managed by mlops-kit: this repository is the record of which model version runs in which
environment. Each deployment is one Kubernetes manifest:

    environments/<environment>/<model>.yaml

(a Seldon Core `SeldonDeployment` or `Model`). A sync (mlops-kit, or Argo CD pointed at
`environments/<environment>/`) makes the environment match this branch.

Every commit names its actor and carries trailers such as `Model:`, `Model-Version:`,
`Environment:` and `Actor:`; `git log --format='%h %s%n%(trailers)'` shows them.
Production changes arrive as merges of promotion branches.
"""

_TRAILER_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")
_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_CREDENTIALS = re.compile(r"(://)[^/@\s]+@")
# Fields NUL-separated, records (in history) led by RS: neither occurs in commit text.
_LOG_FORMAT = "%x00".join(["%H", "%an", "%aI", "%s", "%(trailers:only,unfold)"])
_RECORD, _FIELD = "\x1e", "\x00"
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


@dataclass(frozen=True)
class Commit:
    """One commit of the GitOps branch, with its trailers parsed."""

    sha: str
    author: str
    timestamp: datetime
    """Author date, timezone-aware."""
    subject: str
    trailers: dict[str, str] = field(default_factory=dict)


class GitOpsRepo:
    """The GitOps repository: a remote (bare repo by default) and a working clone we own.

    Every mutating method holds the lock, starts from the remote's head, commits as
    ``actor`` and pushes before returning; readers fetch first, so they see what any other
    clone of the remote pushed.
    """

    push_attempts = 20
    """How often a rejected push (another clone pushed first) is redone on the new head."""
    lock_timeout = 300.0
    """Seconds to wait for another process's git operation before giving up."""
    command_timeout = 300.0
    """Seconds any single git command may take (fetch / push over a network)."""

    def __init__(
        self,
        root: Path,
        remote: str | None = None,
        branch: str = "main",
        manifest_format: ManifestFormat = "seldon-v1",
    ) -> None:
        self.root = Path(root).expanduser().resolve()
        self.work = self.root / "work"
        self.branch = branch
        self.manifest_format: ManifestFormat = manifest_format
        self.remote = _normalize_remote(remote) if remote else str(self.root / "origin.git")
        self._owns_remote = remote is None
        self._lock_path = self.root / ".lock"
        self._ready = False

    @classmethod
    def from_settings(cls, settings: Settings) -> GitOpsRepo:
        """The project's repository, under ``<state_dir>/gitops``."""
        return cls(
            settings.state_dir / "gitops",
            remote=settings.gitops.remote,
            branch=settings.gitops.branch,
            manifest_format=settings.gitops.manifest,
        )

    def __repr__(self) -> str:
        return f"GitOpsRepo(root={str(self.root)!r}, remote={_redact(self.remote)!r})"

    # -- setup -------------------------------------------------------------------------------

    def ensure(self) -> None:
        """Create what is missing: the bare remote (default), the clone, the initial commit.

        Idempotent and safe to call from several processes at once.
        """
        if self._ready and (self.work / ".git").is_dir():
            return
        with self._locked():
            if self._owns_remote and not (Path(self.remote) / "HEAD").exists():
                Path(self.remote).parent.mkdir(parents=True, exist_ok=True)
                self._git("init", "-q", "--bare", "-b", self.branch, self.remote, cwd=self.root)
            if not (self.work / ".git").is_dir():
                self._clone()
            url = self._out("remote", "get-url", "origin").strip()
            if url != self.remote:
                raise GitOpsError(
                    f"the clone at {self.work} follows {_redact(url)}, not "
                    f"{_redact(self.remote)}; delete {self.work} to re-clone"
                )
            self._fetch()
            if not self._has_ref(f"refs/remotes/origin/{self.branch}"):
                self._create_branch_on_remote()
        self._ready = True

    def _clone(self) -> None:
        # Clone beside the target and rename, so a crash never leaves a half-made clone.
        tmp = self.root / f"work.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        self._git("clone", "-q", self.remote, str(tmp), cwd=self.root)
        tmp.rename(self.work)

    def _create_branch_on_remote(self) -> None:
        if not self._has_ref("HEAD"):
            # An empty remote; a remote with history but not our branch starts it from HEAD.
            self._git("symbolic-ref", "HEAD", f"refs/heads/{self.branch}")
        readme = self.work / "README.md"
        if not readme.exists():
            readme.write_text(README)
            self._git("add", "README.md")
            self._commit("mlops-kit", "Initialize GitOps repository", {"Actor": "mlops-kit"})
        # False means another clone created the branch first: theirs is as good.
        self._push(self.branch)
        self._fetch()

    # -- deployments -------------------------------------------------------------------------

    def path_for(self, environment: str, model_name: str) -> str:
        """Repository path of a deployment's manifest: ``environments/<env>/<model>.yaml``."""
        _check_segment("environment", environment)
        _check_segment("model name", model_name)
        return f"{ENVIRONMENTS_DIR}/{environment}/{model_name}.yaml"

    def write(
        self,
        spec: DeploymentSpec,
        *,
        actor: str,
        message: str | None = None,
        trailers: Mapping[str, str] | None = None,
    ) -> str | None:
        """Commit and push ``spec``'s manifest; the new commit's sha, or None if unchanged."""
        relpath = self.path_for(spec.environment, spec.model_name)
        text = manifests.dump(manifests.render(spec, self.manifest_format))
        standard = {
            "Model": spec.model_name,
            "Model-Version": spec.version,
            "Run-Id": spec.run_id,
            "Environment": spec.environment,
        }
        subject = message or f"Deploy {spec.model_name} v{spec.version} to {spec.environment}"
        return self._change(
            self.branch,
            {relpath: text},
            actor=actor,
            message=subject,
            trailers=_merge_trailers(standard, actor, trailers),
        )

    def remove(
        self,
        environment: str,
        model_name: str,
        *,
        actor: str,
        message: str | None = None,
        trailers: Mapping[str, str] | None = None,
    ) -> str | None:
        """Delete a deployment's manifest and push; the commit's sha, or None if it was absent."""
        relpath = self.path_for(environment, model_name)
        standard = {"Model": model_name, "Environment": environment}
        return self._change(
            self.branch,
            {relpath: None},
            actor=actor,
            message=message or f"Remove {model_name} from {environment}",
            trailers=_merge_trailers(standard, actor, trailers),
        )

    def read(self, environment: str) -> list[DeploymentSpec]:
        """Every deployment of ``environment`` at the remote branch head, by model name.

        The directory is where a manifest runs: a file copied by hand from another
        environment's directory reads back with this environment.
        """
        _check_segment("environment", environment)
        sha = self._fetched(self.branch)
        prefix = f"{ENVIRONMENTS_DIR}/{environment}/"
        names = self._out("ls-tree", "--name-only", sha, prefix).splitlines()
        paths = [p for p in names if p.endswith(".yaml")]
        texts = self._cat_files(sha, paths)
        specs = [self._spec(environment, path, texts[path]) for path in paths]
        return sorted(specs, key=lambda s: s.model_name)

    def read_dir(self, directory: str, suffix: str = ".yaml") -> dict[str, str]:
        """Text of every file directly in ``directory`` at the branch head, by path."""
        _check_relpath(directory)
        sha = self._fetched(self.branch)
        names = self._out("ls-tree", "--name-only", sha, f"{directory.rstrip('/')}/").splitlines()
        texts = self._cat_files(sha, [p for p in names if p.endswith(suffix)])
        return {path: text for path, text in texts.items() if text is not None}

    def get(self, environment: str, model_name: str) -> DeploymentSpec | None:
        """The deployment of ``model_name`` in ``environment`` at the remote head, or None."""
        relpath = self.path_for(environment, model_name)
        text = self._cat_files(self._fetched(self.branch), [relpath])[relpath]
        return None if text is None else self._spec(environment, relpath, text)

    def _spec(self, environment: str, relpath: str, text: str | None) -> DeploymentSpec:
        try:
            if text is None:
                raise ConfigError("file vanished")
            spec = manifests.spec_from_manifest(manifests.load(text))
        except ConfigError as exc:
            raise ConfigError(f"{relpath}: {exc}") from None
        if spec.model_name != PurePosixPath(relpath).stem:
            raise ConfigError(f"{relpath} describes model {spec.model_name!r}, not its file name")
        if spec.environment != environment:
            spec = spec.model_copy(update={"environment": environment})
        return spec

    # -- history -----------------------------------------------------------------------------

    def head(self) -> str:
        """The sha of the remote branch head (after fetching)."""
        return self._fetched(self.branch)

    def history(
        self,
        path: str | None = None,
        environment: str | None = None,
        model: str | None = None,
        *,
        ref: str | None = None,
        limit: int | None = None,
    ) -> list[Commit]:
        """Commits of the branch (or ``ref``), newest first, that touched a path.

        ``path`` is any repository path; without it ``environment`` and/or ``model`` select
        ``environments/<env>/<model>.yaml`` (either may be left out). Only first-parent
        history is walked: a merged promotion shows as its merge commit.
        """
        pathspecs: list[str] = []
        if path is not None:
            pathspecs = [path]
        elif environment is not None or model is not None:
            env = environment or "*"
            name = f"{model}.yaml" if model else "*"
            pathspecs = [f":(glob){ENVIRONMENTS_DIR}/{env}/{name}"]
        tip = self._fetched(ref or self.branch)
        args = ["log", "--first-parent", f"--format=%x1e{_LOG_FORMAT}"]
        if limit is not None:
            args.append(f"--max-count={limit}")
        out = self._out(*args, tip, "--", *pathspecs)
        return [_parse_commit(record) for record in out.split(_RECORD) if record.strip()]

    def revert(self, sha: str, *, actor: str, trailers: Mapping[str, str] | None = None) -> str:
        """Undo a commit of the branch with a real ``git revert`` commit, pushed; its sha.

        The revert carries the reverted commit's ``Model`` and ``Environment`` trailers and
        ``Reverts: <sha>``. A commit whose change is already undone raises GitOpsError.
        """
        _check_actor(actor)
        self.ensure()
        with self._locked():
            for _ in range(self.push_attempts):
                self._sync(self.branch)
                target = self._resolve_local(sha)
                if not self._is_ancestor(target, "HEAD"):
                    raise GitOpsError(f"commit {sha} is not on branch {self.branch}")
                original = self._log_one(target)
                parents = self._out("rev-list", "--parents", "-n", "1", target).split()[1:]
                # A merged promotion is undone against the branch it was merged into.
                mainline = ["-m", "1"] if len(parents) > 1 else []
                result = self._git(
                    *_identity(actor), "revert", "--no-commit", *mainline, target, check=False
                )
                if result.returncode != 0:
                    self._clear_pending()
                    raise _error(
                        ["revert", target],
                        result.returncode,
                        result.stderr,
                        "it conflicts with later changes",
                    )
                if self._nothing_staged():
                    raise GitOpsError(f"reverting {target[:10]} changes nothing: already undone")
                copied = {k: v for k, v in original.trailers.items() if k in _REVERT_COPIES}
                extra = {**copied, "Reverts": target}
                message = f'Revert "{original.subject}"\n\nThis reverts commit {target}.'
                new = self._commit(actor, message, _merge_trailers(extra, actor, trailers))
                if self._push(self.branch):
                    return new
            raise self._gave_up()

    # -- branches (promotion requests) ------------------------------------------------------

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
            _check_relpath(relpath)
        trailers = _merge_trailers({}, actor, trailers)
        return self._change(branch, files, actor=actor, message=message, trailers=trailers)

    def read_file(self, ref: str, relpath: str) -> str | None:
        """A file's text at ``ref`` (a branch on the remote, or any commit); None if absent."""
        _check_relpath(relpath)
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
        text = self._message(message, _merge_trailers({"Branch": branch}, actor, trailers))
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
                    *_identity(actor), "merge", "-q", "--no-ff", "--no-edit",
                    "--cleanup=whitespace", f"--file={message_file}",
                    *(["-X", "theirs"] if prefer_branch else []), source, check=False,
                )  # fmt: skip
                if result.returncode != 0:
                    self._clear_pending()
                    raise _error(
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
                    raise _error(
                        ["push", "origin", "--delete", name], result.returncode, result.stderr
                    )
                self._fetch()

    # -- internals ---------------------------------------------------------------------------

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

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the exclusive lock on ``<root>/.lock`` (processes and threads alike)."""
        self.root.mkdir(parents=True, exist_ok=True)
        # A fresh open file description per holder: flock then excludes threads too.
        with open(self._lock_path, "a") as handle:
            deadline = time.monotonic() + self.lock_timeout
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise GitOpsError(
                            f"timed out after {self.lock_timeout:.0f} s waiting for the lock "
                            f"{self._lock_path} (another mlops-kit process is using the repo)"
                        ) from None
                    time.sleep(0.01)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

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
        if _rejected(result.stderr):
            time.sleep(0.01)
            return False
        raise _error(["push", "origin", branch], result.returncode, result.stderr)

    def _gave_up(self) -> GitOpsError:
        return GitOpsError(
            f"gave up after {self.push_attempts} attempts: the remote {_redact(self.remote)} "
            "kept moving (other clones pushing)"
        )

    def _fetched(self, ref: str) -> str:
        """Fetch, then resolve ``ref`` (a remote branch or any revision) to a commit sha."""
        self.ensure()
        with self._locked():
            self._fetch()
        return self._resolve_local(ref)

    def _resolve_local(self, ref: str) -> str:
        """A commit sha for a remote branch name, a sha or any revision; GitOpsError if none."""
        for candidate in (f"refs/remotes/origin/{ref}", ref):
            result = self._git(
                "rev-parse", "-q", "--verify", "--end-of-options", f"{candidate}^{{commit}}",
                check=False,
            )  # fmt: skip
            if result.returncode == 0:
                return result.stdout.strip()
        raise GitOpsError(f"no branch or commit {ref!r} in {_redact(self.remote)}")

    def _has_ref(self, ref: str) -> bool:
        return self._git("rev-parse", "-q", "--verify", ref, check=False).returncode == 0

    def _is_ancestor(self, ancestor: str, descendant: str) -> bool:
        result = self._git("merge-base", "--is-ancestor", ancestor, descendant, check=False)
        return result.returncode == 0

    def _nothing_staged(self) -> bool:
        return self._git("diff", "--cached", "--quiet", check=False).returncode == 0

    def _log_one(self, sha: str) -> Commit:
        return _parse_commit(self._out("log", "-1", f"--format={_LOG_FORMAT}", sha))

    def _message(self, message: str, trailers: Mapping[str, str]) -> str:
        args = [f"--trailer={key}: {value}" for key, value in trailers.items()]
        return self._out("interpret-trailers", *args, input=message.rstrip("\n") + "\n")

    def _commit(self, actor: str, message: str, trailers: Mapping[str, str]) -> str:
        text = self._message(message, trailers)
        # "whitespace", not the default "strip": a message may start with "#123".
        self._git(*_identity(actor), "commit", "-q", "--cleanup=whitespace", "-F", "-", input=text)
        return self._out("rev-parse", "HEAD").strip()

    def _cat_files(self, sha: str, paths: list[str]) -> dict[str, str | None]:
        """Text of each path at commit ``sha`` (None where absent), in one git process."""
        if not paths:
            return {}
        request = "".join(f"{sha}:{p}\n" for p in paths).encode()
        proc = self._run(["cat-file", "--batch"], self.work, request)
        if proc.returncode != 0:
            raise _error(["cat-file", "--batch"], proc.returncode, proc.stderr.decode())
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

    def _check_branch(self, name: str) -> None:
        self.ensure()
        result = self._git("check-ref-format", "--branch", name, check=False)
        if result.returncode != 0 or name.startswith("-") or name == "HEAD":
            raise ConfigError(f"{name!r} is not a valid branch name")

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
            raise _error(list(args), result.returncode, result.stderr)
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
                f"git {_redact(' '.join(args))} timed out after {self.command_timeout:.0f} s"
            ) from exc


_REVERT_COPIES = ("Model", "Environment")


def _merge_trailers(
    standard: Mapping[str, str | None], actor: str, extra: Mapping[str, str] | None
) -> dict[str, str]:
    """Standard trailers (None values dropped), ``Actor``, then the caller's, which win."""
    _check_actor(actor)
    merged: dict[str, object] = {k: v for k, v in standard.items() if v is not None}
    merged["Actor"] = actor
    merged.update({k: v for k, v in (extra or {}).items() if v is not None})
    out = {}
    for key, value in merged.items():
        text = str(value).strip()
        if not _TRAILER_KEY.fullmatch(key):
            raise ConfigError(f"trailer key {key!r} must be letters, digits and '-'")
        if "\n" in text or not text:
            raise ConfigError(f"trailer {key!r} needs a one-line, non-empty value, got {value!r}")
        out[key] = text
    return out


def _identity(actor: str) -> list[str]:
    """Author and committer for one command, leaving every git config file alone."""
    name = re.sub(r"[<>\n]", "", actor).strip()
    email = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "unknown"
    return ["-c", f"user.name={name}", "-c", f"user.email={email}@mlops-kit.local"]


def _check_actor(actor: str) -> None:
    if not re.sub(r"[<>\n]", "", actor).strip():
        raise ConfigError(f"actor must name someone, got {actor!r}")


def _check_segment(what: str, value: str) -> None:
    if not _SEGMENT.fullmatch(value):
        raise ConfigError(f"{what} {value!r} cannot be a path segment in the GitOps repo")


def _check_relpath(relpath: str) -> None:
    parts = PurePosixPath(relpath).parts
    if (
        not parts
        or relpath.startswith("/")
        or any(p in ("..", ".") for p in parts)
        or parts[0] == ".git"
        or "\\" in relpath
    ):
        raise ConfigError(f"{relpath!r} is not a relative path inside the repository")


def _parse_commit(record: str) -> Commit:
    sha, author, date, subject, trailer_text = record.strip("\n").split(_FIELD)
    trailers = {}
    for line in trailer_text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            trailers[key.strip()] = value.strip()
    return Commit(sha, author, datetime.fromisoformat(date), subject, trailers)


def _normalize_remote(remote: str) -> str:
    """Absolute path for a local remote; URLs and ``host:path`` pass through."""
    if "://" in remote or re.match(r"^[^/]+:", remote):
        return remote
    return str(Path(remote).expanduser().resolve())


_RETRYABLE = (
    "[rejected]",  # non-fast-forward: another clone pushed first
    "cannot lock ref",  # another push to the same remote is updating the ref right now
    "failed to update ref",
    "incorrect old value",
)


def _rejected(stderr: str) -> bool:
    return any(s in stderr for s in _RETRYABLE)


def _redact(text: str) -> str:
    return _CREDENTIALS.sub(r"\1***@", text)


def _error(args: list[str], returncode: int, stderr: str, hint: str = "") -> GitOpsError:
    said = " ".join(stderr.split()) or "(no output)"
    message = f"git {' '.join(args)} failed (exit {returncode}): {said}"
    if hint:
        message += f"; {hint}"
    return GitOpsError(_redact(message))


__all__ = ["Commit", "GitOpsRepo"]

"""A real git repository as the record of what runs where.

Layout: ``environments/<environment>/<model>.yaml`` on one branch (``main``), each file a
manifest from :mod:`mlops_kit.gitops.manifests`. Every change is a commit by the acting person with
trailers (``Model:``, ``Model-Version:``, ``Environment:``, ``Actor:``...) and is pushed at
once; the remote (a bare repository in the state directory by default) is the truth, the
working clone under ``<root>/work`` is a scratch area this module owns and resets freely.

Writers on one machine serialize on an ``flock`` at ``<root>/.lock``; writers with other
clones of the same remote are handled by retrying a rejected push on top of the new head.
Commits and their trailers are :mod:`mlops_kit.gitops.commits`; the git commands themselves
:mod:`mlops_kit.gitops.git`.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from mlops_kit.deployment import DeploymentSpec
from mlops_kit.errors import ConfigError, GitOpsError, LockTimeout
from mlops_kit.gitops import manifests
from mlops_kit.gitops.branches import BranchOperations
from mlops_kit.gitops.commits import (
    LOG_FORMAT,
    RECORD,
    REVERT_COPIES,
    Commit,
    Commits,
    check_actor,
    identity,
    merge_trailers,
    parse_commit,
)
from mlops_kit.gitops.git import check_relpath, error, normalize_remote, redact
from mlops_kit.gitops.manifests import DocumentFormat, ManifestFormat
from mlops_kit.process import locked

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

_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


class GitOpsRepo(BranchOperations):
    """The GitOps repository: a remote (bare repo by default) and a working clone we own.

    Every mutating method holds the lock, starts from the remote's head, commits as
    ``actor`` and pushes before returning; readers fetch first, so they see what any other
    clone of the remote pushed.
    """

    lock_timeout = 300.0
    """Seconds to wait for another process's git operation before giving up."""

    def __init__(
        self,
        root: Path,
        remote: str | None = None,
        branch: str = "main",
        manifest_format: ManifestFormat = "seldon-v1",
        formats: Mapping[str, DocumentFormat] | None = None,
    ) -> None:
        self.root = Path(root).expanduser().resolve()
        self.work = self.root / "work"
        self.branch = branch
        self.manifest_format: ManifestFormat = manifest_format
        self.formats: dict[str, DocumentFormat] = dict(formats or {})
        """Environments whose documents are not ``manifest_format`` (SageMaker ones)."""
        self.remote = normalize_remote(remote) if remote else str(self.root / "origin.git")
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
            formats={
                env.name: manifests.format_for(settings, env.name) for env in settings.environments
            },
        )

    def __repr__(self) -> str:
        return f"GitOpsRepo(root={str(self.root)!r}, remote={redact(self.remote)!r})"

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
                    f"the clone at {self.work} follows {redact(url)}, not "
                    f"{redact(self.remote)}; delete {self.work} to re-clone"
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
        fmt = self.formats.get(spec.environment, self.manifest_format)
        text = manifests.dump(manifests.render(spec, fmt))
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
            trailers=merge_trailers(standard, actor, trailers),
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
            trailers=merge_trailers(standard, actor, trailers),
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
        check_relpath(directory)
        sha = self._fetched(self.branch)
        names = self._out("ls-tree", "--name-only", sha, f"{directory.rstrip('/')}/").splitlines()
        texts = self._cat_files(sha, [p for p in names if p.endswith(suffix)])
        return {path: text for path, text in texts.items() if text is not None}

    def get(
        self, environment: str, model_name: str, *, branch: str | None = None
    ) -> DeploymentSpec | None:
        """The deployment of ``model_name`` in ``environment`` at the remote head (of
        ``branch``, default the main one), or None."""
        relpath = self.path_for(environment, model_name)
        if branch is not None:
            self._check_branch(branch)
        text = self._cat_files(self._fetched(branch or self.branch), [relpath])[relpath]
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
    ) -> Commits:
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
        args = ["log", "--first-parent", f"--format=%x1e{LOG_FORMAT}"]
        if limit is not None:
            args.append(f"--max-count={limit}")
        out = self._out(*args, tip, "--", *pathspecs)
        return Commits(parse_commit(record) for record in out.split(RECORD) if record.strip())

    def revert(self, sha: str, *, actor: str, trailers: Mapping[str, str] | None = None) -> str:
        """Undo a commit of the branch with a real ``git revert`` commit, pushed; its sha.

        The revert carries the reverted commit's ``Model`` and ``Environment`` trailers and
        ``Reverts: <sha>``. A commit whose change is already undone raises GitOpsError.
        """
        check_actor(actor)
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
                    *identity(actor), "revert", "--no-commit", *mainline, target, check=False
                )
                if result.returncode != 0:
                    self._clear_pending()
                    raise error(
                        ["revert", target],
                        result.returncode,
                        result.stderr,
                        "it conflicts with later changes",
                    )
                if self._nothing_staged():
                    raise GitOpsError(f"reverting {target[:10]} changes nothing: already undone")
                copied = {k: v for k, v in original.trailers.items() if k in REVERT_COPIES}
                extra = {**copied, "Reverts": target}
                message = f'Revert "{original.subject}"\n\nThis reverts commit {target}.'
                new = self._commit(actor, message, merge_trailers(extra, actor, trailers))
                if self._push(self.branch):
                    return new
            raise self._gave_up()

    # -- internals ---------------------------------------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the exclusive lock on ``<root>/.lock`` (processes and threads alike)."""
        with ExitStack() as stack:
            try:
                stack.enter_context(locked(self._lock_path, timeout=self.lock_timeout))
            except LockTimeout:
                raise GitOpsError(
                    f"timed out after {self.lock_timeout:.0f} s waiting for the lock "
                    f"{self._lock_path} (another mlops-kit process is using the repo)"
                ) from None
            yield

    def _fetched(self, ref: str) -> str:
        """Fetch, then resolve ``ref`` (a remote branch or any revision) to a commit sha."""
        self.ensure()
        with self._locked():
            self._fetch()
        return self._resolve_local(ref)


def _check_segment(what: str, value: str) -> None:
    if not _SEGMENT.fullmatch(value):
        raise ConfigError(f"{what} {value!r} cannot be a path segment in the GitOps repo")


__all__ = ["ENVIRONMENTS_DIR", "Commit", "GitOpsRepo"]

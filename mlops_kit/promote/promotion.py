"""Promotion requests: open with evidence, decide under the approval policy, roll out, roll back.

Like a pull request into the GitOps production path: each request is a branch
``promote/<id>`` carrying the target environment's new manifest, plus a request file
``requests/<id>.yaml`` on the main branch that records evidence, decisions and outcome.
Approval by enough people merges the branch (a merge commit with the approvers as trailers),
syncs the environment, verifies it with a smoke test and moves the registry alias. A failed
verification reverts the merge, syncs back and restores the alias.

Promotions are serialized by a lock in the state directory, so concurrent attempts keep a
linear history and none is lost.
"""

from __future__ import annotations

import os
import secrets
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import yaml

from mlops_kit.errors import (
    ConfigError,
    GitOpsError,
    PromotionFailed,
    RequestNotFound,
    ToolkitError,
)
from mlops_kit.gitops import manifests
from mlops_kit.gitops.deploy import current_actor, spec_for
from mlops_kit.gitops.repository import GitOpsRepo
from mlops_kit.gitops.sync import sync
from mlops_kit.process import locked
from mlops_kit.promote import approvals, evidence, signing
from mlops_kit.promote.approvals import Decision, DecisionKind, PromotionRequest
from mlops_kit.promote.evidence import REPORT_ENV, current_report  # noqa: F401 - re-exported
from mlops_kit.promote.signers import Signers
from mlops_kit.registry.client import Registry
from mlops_kit.settings import require_project
from mlops_kit.train.training import TAG_PREFIX

if TYPE_CHECKING:
    import pandas as pd

    from mlops_kit.project import Project

REQUESTS_DIR = "requests"
PROMOTIONS_DIR = "promotions"
BRANCH_PREFIX = "promote/"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def request_path(request_id: str) -> str:
    """Where a request's record lives in the GitOps repository."""
    return f"{REQUESTS_DIR}/{request_id}.yaml"


def branch_name(request_id: str) -> str:
    """The branch that carries a request's change."""
    return f"{BRANCH_PREFIX}{request_id}"


def promotion_lock(project: Project) -> AbstractContextManager[None]:
    """Serialize promotions and rollbacks across threads and processes."""
    return locked(project.state_dir / "locks" / "promotions.lock")


@dataclass
class Promotions:
    """Open, list, decide on and roll back promotions of the project's model.

    Needs a project file (ConfigError otherwise): see :func:`mlops_kit.settings.require_project`.
    """

    project: Project

    def __post_init__(self) -> None:
        # Approvals are only as strict as the project file says: the built-in defaults name
        # no approvers, so promotions never run on them (and nothing is created first).
        require_project(self.project.settings, "working with promotions")
        self.repo = GitOpsRepo.from_settings(self.project.settings)
        self.repo.ensure()
        self.registry = Registry(self.project)
        self.signers = Signers(self.repo)

    # -- requests ----------------------------------------------------------------------------

    def open(
        self,
        candidate: str | int | None = None,
        *,
        from_env: str | None = None,
        to_env: str | None = None,
        requested_by: str | None = None,
        evidence: dict[str, Any] | None = None,
    ) -> PromotionRequest:
        """Open a request to promote ``candidate`` (default: what ``from_env`` serves)."""
        settings = self.project.settings
        dest = (
            settings.environment(to_env) if to_env else settings.environment_of_kind("production")
        )
        source = settings.promotion_source(dest.name)
        if source is None:
            raise ConfigError(f"{dest.name} is the first environment: nothing promotes into it")
        if from_env is not None and from_env != source.name:
            raise ConfigError(
                f"{dest.name} takes versions from {source.name}, not {from_env} "
                "(environments[].promotes_from)"
            )
        if candidate is None:
            found = self.registry.by_alias(source.name)
            if found is None:
                raise ConfigError(f"nothing to promote: alias {source.name!r} is not set")
            candidate = found.version
        info = self.registry.get(candidate)
        verdict = info.lineage.get(f"smoke.{source.name}", "not run")
        if verdict != "passed":
            raise ConfigError(
                f"v{info.version} cannot go to {dest.name}: {source.name} must serve it and pass "
                f"its smoke test first (smoke test on {source.name}: {verdict})"
            )
        current = self.registry.by_alias(dest.name)
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        request = PromotionRequest(
            id=f"{stamp}-{self.project.model_name}-v{info.version}-{secrets.token_hex(2)}",
            model_name=self.project.model_name,
            from_env=source.name,
            to_env=dest.name,
            candidate=info.version,
            current=current.version if current else None,
            requested_by=(requested_by or current_actor()).strip(),
            requested_at=_now(),
            evidence={
                **self.evidence(info.version, current.version if current else None, source.name),
                **(evidence or {}),
            },
        )
        spec = spec_for(self.project, dest.name, info.version)
        branch = branch_name(request.id)
        manifest = manifests.dump(manifests.render(spec, manifests.format_for(settings, dest.name)))
        # The marker file makes every request a real change, even when the environment
        # already runs the candidate by the time it is approved.
        marker = yaml.safe_dump(
            {"request": request.id, "version": request.candidate, "by": request.requested_by},
            sort_keys=False,
        )
        # The branch is cut only once the request is valid, and removed if opening it fails;
        # under the lock, a branch without a request file was left by a killed process.
        with promotion_lock(self.project):
            self.prune_orphans()
            self.repo.create_branch(branch)
            try:
                self.repo.commit_files(
                    branch,
                    {
                        self.repo.path_for(dest.name, spec.model_name): manifest,
                        f"{PROMOTIONS_DIR}/{dest.name}/{spec.model_name}.yaml": marker,
                    },
                    actor=request.requested_by,
                    message=f"Promote {spec.model_name} v{spec.version} to {dest.name}",
                    trailers=self._trailers(request),
                )  # fmt: skip
                self._save(request, request.requested_by, f"Request promotion {request.id}")
            except BaseException:
                self.repo.delete_branch(branch)
                raise
            self._supersede(request)
        self.registry.tag(info.version, {f"{TAG_PREFIX}promotion.{dest.name}": request.id})
        return request

    def prune_orphans(self) -> list[str]:
        """Delete ``promote/*`` branches with no request file, left by a process killed while
        opening a request (opening holds the promotion lock, so call this under it)."""
        known = {request_path(r.id) for r in self.all()}
        pruned = []
        for branch in self.repo.list_branches(BRANCH_PREFIX):
            if request_path(branch.removeprefix(BRANCH_PREFIX)) not in known:
                self.repo.delete_branch(branch)
                pruned.append(branch)
        return pruned

    def _supersede(self, newest: PromotionRequest) -> None:
        """Older pending requests into the same environment can no longer be approved."""
        for older in self.pending():
            if older.id == newest.id or (older.to_env, older.model_name) != (
                newest.to_env,
                newest.model_name,
            ):
                continue
            done = older.with_status("superseded", f"superseded by {newest.id}")
            self._save(done, newest.requested_by, f"Supersede promotion {older.id}")
            self.repo.delete_branch(branch_name(older.id))

    def evidence(self, candidate: str, current: str | None, from_env: str) -> dict[str, Any]:
        """What an approver needs: metric diff, gate verdict, smoke and load results, reports."""
        return evidence.gather(self.project, self.registry, candidate, current, from_env)

    def get(self, request_id: str) -> PromotionRequest:
        """A request by id (a unique prefix is enough)."""
        requests = self.all()
        matches = [r for r in requests if r.id == request_id] or [
            r for r in requests if r.id.startswith(request_id)
        ]
        if len(matches) != 1:
            raise RequestNotFound(request_id, [r.id for r in requests])
        return matches[0]

    def all(self, status: str | None = None) -> list[PromotionRequest]:
        """Every request, oldest first, optionally only those with ``status``."""
        found = [
            PromotionRequest.from_dict(yaml.safe_load(text))
            for text in self.repo.read_dir(REQUESTS_DIR).values()
        ]
        found.sort(key=lambda r: (r.requested_at, r.id))
        return [r for r in found if status is None or r.status == status]

    def select(self, request_id: str | None = None) -> PromotionRequest:
        """The request named, or else the newest pending one."""
        if request_id:
            return self.get(request_id)
        waiting = self.pending()
        if not waiting:
            raise ConfigError(
                "no pending promotion request; run notebook 02 or `mlops-kit request`"
            )
        return waiting[-1]

    def decide_from_parameters(
        self,
        request: PromotionRequest,
        approve: bool | None,
        approver: str = "",
        comment: str = "",
        signing_key: str | None = None,
    ) -> PromotionRequest | None:
        """The headless path for CI: ``approve`` True/False decides as ``approver``.

        None leaves the decision to a person at the approval panel and returns None at once:
        under papermill the notebook never waits on a widget.
        """
        if approve is None:
            return None
        if not isinstance(approve, bool):
            from mlops_kit.errors import ParameterError

            raise ParameterError("approve", f"must be True, False or None, not {approve!r}")
        key = signing_key or None
        if approve:
            return self.decide(request.id, approver, "approve", comment, signing_key=key)
        return self.decide(
            request.id, approver, "reject", comment or "rejected in CI", signing_key=key
        )

    def attach_evidence(
        self, key: str, value: Any, *, request_id: str | None = None, actor: str | None = None
    ) -> PromotionRequest | None:
        """Add evidence (e.g. a load-test verdict) to a pending request; None if none is pending.

        Without ``request_id`` it goes to the newest pending request.
        """
        with promotion_lock(self.project):
            waiting = [self.get(request_id)] if request_id else self.pending()
            if not waiting or waiting[-1].status != "pending":
                return None
            request = waiting[-1]
            updated = replace(request, evidence={**request.evidence, key: value})
            self._save(updated, actor or current_actor(), f"Add {key} evidence to {request.id}")
            return updated

    def pending(self) -> list[PromotionRequest]:
        """Requests waiting for a decision."""
        return self.all("pending")

    def table(self) -> pd.DataFrame:
        """Every request as a table."""
        import pandas as pd

        return pd.DataFrame(
            [
                {
                    "id": r.id,
                    "version": r.candidate,
                    "from": r.from_env,
                    "to": r.to_env,
                    "status": r.status,
                    "requested_by": r.requested_by,
                    "approvers": ", ".join(r.approvers),
                    "outcome": r.outcome,
                }
                for r in self.all()
            ]
        )

    # -- decisions ---------------------------------------------------------------------------

    def decide(
        self,
        request_id: str,
        actor: str,
        kind: DecisionKind,
        comment: str = "",
        *,
        rollout: bool = True,
        signing_key: str | os.PathLike[str] | None = None,
    ) -> PromotionRequest:
        """Record ``actor``'s approval or rejection; roll out once approvals suffice.

        The decision counts only once ``actor`` is verified the policy's way (``identity``):
        under ``ssh`` it is signed with ``signing_key`` (default ``$MLOPS_KIT_SIGNING_KEY``,
        then git's ``user.signingkey``) and the signature must verify for ``actor`` against
        the repository's ``allowed_signers``. A refused decision raises ApprovalRefused and
        changes nothing. A rollout that fails verification is rolled back and raises
        PromotionFailed.
        """
        actor = actor.strip()
        with promotion_lock(self.project):
            request = self.get(request_id)
            policy = self.project.settings.environment(request.to_env).approval
            approvals.check(policy, request, actor, kind, verified=True)
            at = approvals.now()
            signature = signing.attest(
                policy, request, actor, kind, comment, at, signing_key, self.signers.text
            )
            updated = approvals.decide(
                policy, request, actor, kind, comment, verified=True, at=at, signature=signature
            )
            verb = "Approve" if kind == "approve" else "Reject"
            self._save(updated, actor, f"{verb} promotion {request.id}", {"Decision": kind})
            self._mirror(updated)
            if updated.status == "rejected":
                self.repo.delete_branch(branch_name(request.id))
            if updated.status == "approved" and rollout:
                # The swap first: the rollout tags the version with its outcome itself, once the
                # new version answers (the registry costs seconds to open in a fresh process).
                try:
                    return self._rollout(updated, actor)
                except PromotionFailed:
                    raise
                except BaseException:
                    self._tag_status(updated)
                    raise
            self._tag_status(updated)
            return updated

    def _tag_status(self, request: PromotionRequest) -> None:
        """Tag the candidate version with the request's status."""
        self.registry.tag(
            request.candidate, {f"{TAG_PREFIX}promotion.{request.id}": request.status}
        )

    def approve(
        self,
        request_id: str,
        actor: str,
        comment: str = "",
        *,
        signing_key: str | os.PathLike[str] | None = None,
    ) -> PromotionRequest:
        """Approve; see :meth:`decide`."""
        return self.decide(request_id, actor, "approve", comment, signing_key=signing_key)

    def reject(
        self,
        request_id: str,
        actor: str,
        reason: str,
        *,
        signing_key: str | os.PathLike[str] | None = None,
    ) -> PromotionRequest:
        """Reject with a reason; see :meth:`decide`."""
        return self.decide(request_id, actor, "reject", reason, signing_key=signing_key)

    def _mirror(self, request: PromotionRequest) -> None:
        """Mirror a decided request onto the version's SageMaker model package, when the
        environment is served by SageMaker (its registry then shows our approvals).

        The decision stands whatever SageMaker answers: the outcome is the version's tag
        ``mlops.sagemaker.approval`` (the package's new status, or why it could not be set).
        """
        env = self.project.settings.environment(request.to_env)
        if env.target != "sagemaker" or request.status not in ("approved", "rejected"):
            return
        from mlops_kit.targets.sagemaker.model_packages import mirror_decision

        kind = "approve" if request.status == "approved" else "reject"
        deciders = [d for d in request.decisions if d.kind == kind]
        try:
            arn = mirror_decision(
                self.project.settings,
                request.model_name,
                request.candidate,
                status=request.status,
                approver=", ".join(d.actor for d in deciders),
                model_uri=str(self.registry.local_path(request.candidate)),
                comment="; ".join(d.comment for d in deciders if d.comment),
            )
            outcome = f"{request.status} ({arn})"
        except ToolkitError as exc:
            outcome = f"not mirrored: {exc}"
        self.registry.tag(request.candidate, {f"{TAG_PREFIX}sagemaker.approval": outcome})

    def verify_decisions(self, request: PromotionRequest) -> list[tuple[Decision, bool]]:
        """Each decision of ``request`` and whether its signature verifies today."""
        return signing.verify_decisions(request, self.signers.text())

    # -- rollout and rollback ----------------------------------------------------------------

    def _rollout(self, request: PromotionRequest, actor: str) -> PromotionRequest:
        from mlops_kit.promote.rollout import roll_out

        return roll_out(self, request, actor)

    def rollback(self, environment: str, actor: str | None = None) -> str:
        """Go one step back in ``environment``: revert the change that brought what it serves.

        Reverts the newest change of the environment's manifest that is not already reverted
        (so repeated rollbacks keep stepping back), syncs, and points the alias at what the
        environment then serves. Returns the revert commit.
        """
        actor = actor or current_actor()
        model = self.project.model_name
        with promotion_lock(self.project):
            commits = self.repo.history(environment=environment, model=model)
            reverted = {c.trailers["Reverts"] for c in commits if "Reverts" in c.trailers}
            live = [c for c in commits if "Reverts" not in c.trailers and c.sha not in reverted]
            if len(live) < 2:
                raise GitOpsError(
                    f"{environment} has no earlier version of {model} to roll back to"
                )
            revert = self.repo.revert(live[0].sha, actor=actor, trailers={"Rollback": environment})
            sync(self.project, environment, repo=self.repo)
            spec = self.repo.get(environment, model)
            if spec is not None:
                self.registry.set_alias(environment, spec.version)
            return revert

    # -- records -----------------------------------------------------------------------------

    def _trailers(self, request: PromotionRequest) -> dict[str, str]:
        return {
            "Request-Id": request.id,
            "Model": request.model_name,
            "Model-Version": request.candidate,
            "Environment": request.to_env,
            "Requested-By": request.requested_by,
        }

    def _save(
        self,
        request: PromotionRequest,
        actor: str,
        message: str,
        extra: dict[str, str] | None = None,
    ) -> None:
        text = yaml.safe_dump(request.to_dict(), sort_keys=False)
        trailers = {**self._trailers(request), "Status": request.status, **(extra or {})}
        self.repo.commit_files(
            self.repo.branch,
            {request_path(request.id): text},
            actor=actor,
            message=message,
            trailers=trailers,
        )

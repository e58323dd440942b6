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
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from mlops_kit.errors import ConfigError, GitOpsError, PromotionFailed, RequestNotFound
from mlops_kit.gitops import manifests
from mlops_kit.gitops.deploy import current_actor, smoke, spec_for
from mlops_kit.gitops.repository import GitOpsRepo
from mlops_kit.gitops.sync import sync
from mlops_kit.process import locked
from mlops_kit.promote import approvals, hooks
from mlops_kit.promote.approvals import DecisionKind, PromotionRequest
from mlops_kit.registry.client import Registry
from mlops_kit.train.training import TAG_PREFIX

if TYPE_CHECKING:
    import pandas as pd

    from mlops_kit.project import Project

REQUESTS_DIR = "requests"
PROMOTIONS_DIR = "promotions"
BRANCH_PREFIX = "promote/"
LINEAGE_KEYS = ("git_commit", "data_fingerprint", "pipeline_run_id")
REPORT_ENV = "MLOPS_KIT_REPORT"
"""The HTML report the running notebook renders to (``mlops-kit run`` sets it per notebook)."""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def request_path(request_id: str) -> str:
    """Where a request's record lives in the GitOps repository."""
    return f"{REQUESTS_DIR}/{request_id}.yaml"


def branch_name(request_id: str) -> str:
    """The branch that carries a request's change."""
    return f"{BRANCH_PREFIX}{request_id}"


def report_paths(reports_dir: Path) -> list[str]:
    """The HTML reports a request cites: those in ``reports_dir`` (where ``mlops-kit run``
    writes, as it tells the kernels) and the one the running notebook is about to write."""
    found = {_shown(p) for p in reports_dir.glob("*.html")}
    current = current_report()
    return sorted(found | {current} if current else found)


def current_report() -> str | None:
    """The HTML report the running notebook renders to, when ``mlops-kit run`` runs it."""
    path = os.environ.get(REPORT_ENV)
    return _shown(Path(path)) if path else None


def _shown(path: Path) -> str:
    # Relative to the working directory when inside it, as the reports are opened from there.
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path.resolve())


def promotion_lock(project: Project) -> AbstractContextManager[None]:
    """Serialize promotions and rollbacks across threads and processes."""
    return locked(project.state_dir / "locks" / "promotions.lock")


@dataclass
class Promotions:
    """Open, list, decide on and roll back promotions of the project's model."""

    project: Project

    def __post_init__(self) -> None:
        self.repo = GitOpsRepo.from_settings(self.project.settings)
        self.repo.ensure()
        self.registry = Registry(self.project)

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
        source = (
            settings.environment(from_env) if from_env else settings.environment_of_kind("staging")
        )
        dest = (
            settings.environment(to_env) if to_env else settings.environment_of_kind("production")
        )
        if candidate is None:
            found = self.registry.by_alias(source.name)
            if found is None:
                raise ConfigError(f"nothing to promote: alias {source.name!r} is not set")
            candidate = found.version
        info = self.registry.get(candidate)
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
        self.repo.create_branch(branch)
        trailers = self._trailers(request)
        manifest = manifests.dump(manifests.render(spec, settings.gitops.manifest))
        # The marker file makes every request a real change, even when the environment
        # already runs the candidate by the time it is approved.
        marker = yaml.safe_dump(
            {"request": request.id, "version": request.candidate, "by": request.requested_by},
            sort_keys=False,
        )
        self.repo.commit_files(
            branch,
            {
                self.repo.path_for(dest.name, spec.model_name): manifest,
                f"{PROMOTIONS_DIR}/{dest.name}/{spec.model_name}.yaml": marker,
            },
            actor=request.requested_by,
            message=f"Promote {spec.model_name} v{spec.version} to {dest.name}",
            trailers=trailers,
        )  # fmt: skip
        self._save(request, request.requested_by, f"Request promotion {request.id}")
        self.registry.tag(info.version, {f"{TAG_PREFIX}promotion.{dest.name}": request.id})
        return request

    def evidence(self, candidate: str, current: str | None, from_env: str) -> dict[str, Any]:
        """What an approver needs: metric diff, gate verdict, smoke and load results, reports."""
        cand = self.registry.get(candidate)
        metrics: dict[str, Any] = {"candidate": self._metrics(cand.run_id)}
        if current is not None:
            metrics["current"] = self._metrics(self.registry.get(current).run_id)
            metrics["diff"] = {
                k: round(v - metrics["current"][k], 6)
                for k, v in metrics["candidate"].items()
                if k in metrics["current"]
            }
        tags = cand.lineage
        reports = report_paths(self.project.settings.reports_dir)
        return {
            "metrics": metrics,
            "gate": {k.removeprefix("gate."): v for k, v in tags.items() if k.startswith("gate.")},
            "smoke": {
                "verdict": tags.get(f"smoke.{from_env}", "not run"),
                "detail": tags.get(f"smoke.{from_env}.detail", ""),
            },
            "load_test": {
                k.removeprefix(f"loadtest.{from_env}."): v
                for k, v in tags.items()
                if k.startswith(f"loadtest.{from_env}.")
            }
            or None,
            "lineage": {k: tags[k] for k in LINEAGE_KEYS if k in tags},
            "reports": reports,
        }

    def _metrics(self, run_id: str | None) -> dict[str, float]:
        if not run_id:
            return {}
        return dict(self.project.client.get_run(run_id).data.metrics)

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
        if approve:
            return self.decide(request.id, approver, "approve", comment)
        return self.decide(request.id, approver, "reject", comment or "rejected in CI")

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
    ) -> PromotionRequest:
        """Record ``actor``'s approval or rejection; roll out once approvals suffice.

        A refused decision (policy) raises ApprovalRefused and changes nothing. A rollout that
        fails verification is rolled back and raises PromotionFailed.
        """
        with promotion_lock(self.project):
            request = self.get(request_id)
            policy = self.project.settings.environment(request.to_env).approval
            updated = approvals.decide(policy, request, actor, kind, comment)
            verb = "Approve" if kind == "approve" else "Reject"
            self._save(updated, actor, f"{verb} promotion {request.id}", {"Decision": kind})
            self.registry.tag(
                request.candidate,
                {f"{TAG_PREFIX}promotion.{request.id}": updated.status},
            )
            if updated.status == "rejected":
                self.repo.delete_branch(branch_name(request.id))
            if updated.status == "approved" and rollout:
                updated = self._rollout(updated, actor)
            return updated

    def approve(self, request_id: str, actor: str, comment: str = "") -> PromotionRequest:
        """Approve; see :meth:`decide`."""
        return self.decide(request_id, actor, "approve", comment)

    def reject(self, request_id: str, actor: str, reason: str) -> PromotionRequest:
        """Reject with a reason; see :meth:`decide`."""
        return self.decide(request_id, actor, "reject", reason)

    # -- rollout and rollback ----------------------------------------------------------------

    def _rollout(self, request: PromotionRequest, actor: str) -> PromotionRequest:
        hooks.call("before_promote", request=request)
        env = request.to_env
        previous = self.registry.by_alias(env)
        trailers = {
            **self._trailers(request),
            "Approved-By": ", ".join(request.approvers),
            "Previous-Version": previous.version if previous else "none",
        }
        merge = self.repo.merge(
            branch_name(request.id),
            actor=actor,
            message=f"Promote {request.model_name} v{request.candidate} to {env} ({request.id})",
            trailers=trailers,
            prefer_branch=True,
        )
        self.repo.delete_branch(branch_name(request.id))
        # Another promotion may have landed since this branch was cut; a merge keeps lines the
        # branch did not touch, so pin the manifest to exactly the candidate.
        pin = self.repo.write(
            spec_for(self.project, env, request.candidate),
            actor=actor,
            message=f"Pin {request.model_name} v{request.candidate} in {env} ({request.id})",
            trailers=trailers,
        )
        try:
            report = sync(self.project, env, repo=self.repo)
            result = smoke(self.project, env, request.candidate)
            from mlops_kit import targets

            status = targets.for_environment(self.project.settings, env).status(request.model_name)
            hooks.call(
                "after_deploy",
                environment=env,
                spec=spec_for(self.project, env, request.candidate),
                status=status,
            )
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}".splitlines()[0][:400]
            undo = [pin, merge] if pin else [merge]
            self._undo(undo, request, actor, reason, previous.version if previous else None)
            raise PromotionFailed(request.id, reason) from exc
        self.registry.set_alias(env, request.candidate)
        done = request.with_status(
            "rolled_out",
            f"{env} serves v{request.candidate} since {_now()} "
            f"(sync {report.seconds:.2f}s, smoke {result.n_requests} requests)",
        )
        self._save(done, actor, f"Roll out promotion {request.id}", {"Merge": merge})
        self.registry.tag(
            request.candidate,
            {
                f"{TAG_PREFIX}promotion.{request.id}": "rolled_out",
                f"{TAG_PREFIX}approved_by": ", ".join(request.approvers),
            },
        )
        return done

    def _undo(
        self,
        commits: list[str],
        request: PromotionRequest,
        actor: str,
        reason: str,
        previous: str | None,
    ) -> None:
        for sha in commits:  # newest first
            revert = self.repo.revert(sha, actor=actor, trailers={"Request-Id": request.id})
        sync(self.project, request.to_env, repo=self.repo)
        if previous is not None:
            self.registry.set_alias(request.to_env, previous)
        else:
            self.registry.delete_alias(request.to_env)
        failed = request.with_status("failed", f"rolled back ({revert[:10]}): {reason}")
        self._save(failed, actor, f"Promotion {request.id} failed", {"Revert": revert})
        self.registry.tag(request.candidate, {f"{TAG_PREFIX}promotion.{request.id}": "failed"})

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

"""Rolling out an approved request: verify the candidate before it takes traffic, merge, sync,
verify again, move the alias; undo everything when a step fails.

Where the target can serve a candidate privately (``capabilities.preview``), the smoke test and
the ``after_deploy`` hooks run against it before any production request can reach it: a
candidate that fails never answers one. Elsewhere they run right after the rollout, and a
failure reverts it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from mlops_kit import targets
from mlops_kit.errors import PromotionFailed
from mlops_kit.gitops.deploy import examples_cache, smoke, spec_for
from mlops_kit.gitops.sync import sync
from mlops_kit.promote import hooks, signing
from mlops_kit.train.training import TAG_PREFIX
from mlops_kit.verify.smoke import examples_from_model, smoke_test

if TYPE_CHECKING:
    from mlops_kit.deployment import DeploymentSpec
    from mlops_kit.project import Project
    from mlops_kit.promote.approvals import PromotionRequest
    from mlops_kit.promote.promotion import Promotions
    from mlops_kit.targets.base import DeploymentStatus


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:400]


def roll_out(promotions: Promotions, request: PromotionRequest, actor: str) -> PromotionRequest:
    """Take an approved request to its environment; raises PromotionFailed after undoing."""
    from mlops_kit.promote.promotion import branch_name

    project, repo, registry = promotions.project, promotions.repo, promotions.registry
    env = request.to_env
    policy = project.settings.environment(env).approval
    signing.check_signed(policy, request, promotions.signers.text())
    hooks.call("before_promote", request=request)
    spec = _approved_spec(promotions, request)
    target = targets.for_environment(project.settings, env)
    try:
        with target.preview(spec) as candidate:
            if candidate is not None:
                verify(project, spec, candidate)
    except Exception as exc:
        reason = _reason(exc)
        refused = request.with_status("failed", f"refused before it took traffic: {reason}")
        promotions._save(refused, actor, f"Promotion {request.id} failed verification")
        registry.tag(request.candidate, {f"{TAG_PREFIX}promotion.{request.id}": "failed"})
        repo.delete_branch(branch_name(request.id))
        raise PromotionFailed(request.id, f"before it took traffic: {reason}") from exc
    previewed = candidate is not None
    # What the environment serves now, as the repository has it: the registry (MLflow, seconds
    # to load in a fresh process) is left for the bookkeeping once the new version answers.
    served = repo.get(env, request.model_name)
    previous = served.version if served else None
    strategy = project.settings.environment(env).rollout.strategy
    if strategy != "replace":
        from mlops_kit.promote import progressive

        started = progressive.start(promotions, request, actor, spec, previewed)
        if started is not None:
            return started
    return switch(promotions, request, actor, spec, previewed, previous)


def switch(
    promotions: Promotions,
    request: PromotionRequest,
    actor: str,
    spec: DeploymentSpec,
    previewed: bool,
    previous: str | None,
    steps: list[str] | None = None,
) -> PromotionRequest:
    """Hand the environment to the verified candidate at once: merge the request's branch, pin,
    sync, smoke-test, move the alias; ``previous`` is the version served
    before. ``steps`` are a progressive rollout's commits (newest
    first), reverted too if this fails."""
    from mlops_kit.promote.promotion import branch_name

    project, repo, registry = promotions.project, promotions.repo, promotions.registry
    env = request.to_env
    target = targets.for_environment(project.settings, env)
    trailers = {
        **promotions._trailers(request),
        "Approved-By": ", ".join(request.approvers),
        "Previous-Version": previous or "none",
    }
    merge = repo.merge(
        branch_name(request.id),
        actor=actor,
        message=f"Promote {request.model_name} v{request.candidate} to {env} ({request.id})",
        trailers=trailers,
        prefer_branch=True,
    )
    repo.delete_branch(branch_name(request.id))
    # Another promotion may have landed since this branch was cut; a merge keeps lines the
    # branch did not touch, so pin the manifest to exactly the candidate.
    pin = repo.write(
        spec,
        actor=actor,
        message=f"Pin {request.model_name} v{request.candidate} in {env} ({request.id})",
        trailers=trailers,
    )
    try:
        report = sync(project, env, repo=repo)
        result = smoke(project, env, request.candidate)
        if not previewed:
            status = target.status(request.model_name)
            hooks.call("after_deploy", environment=env, spec=spec, status=status)
    except Exception as exc:
        undo = ([pin, merge] if pin else [merge]) + (steps or [])
        _undo(promotions, undo, request, actor, _reason(exc), previous)
        raise PromotionFailed(request.id, _reason(exc)) from exc
    registry.set_alias(env, request.candidate)
    how = f"{request.rollout['summary']}, " if request.rollout.get("summary") else ""
    done = request.with_status(
        "rolled_out",
        f"{env} serves v{request.candidate} since {_now()} "
        f"({how}sync {report.seconds:.2f}s, smoke {result.n_requests} requests)",
    )
    promotions._save(done, actor, f"Roll out promotion {request.id}", {"Merge": merge})
    registry.tag(
        request.candidate,
        {
            f"{TAG_PREFIX}promotion.{request.id}": "rolled_out",
            f"{TAG_PREFIX}approved_by": ", ".join(request.approvers),
        },
    )
    return done


def _approved_spec(promotions: Promotions, request: PromotionRequest) -> DeploymentSpec:
    """The candidate's deployment as the request's branch carries it (what was approved), else
    as the registry has it."""
    from mlops_kit.promote.promotion import branch_name

    branch = branch_name(request.id)
    carried = promotions.repo.get(request.to_env, request.model_name, branch=branch)
    if carried is not None and carried.version == request.candidate:
        return carried
    return spec_for(promotions.project, request.to_env, request.candidate)


def verify(project: Project, spec: DeploymentSpec, candidate: DeploymentStatus) -> None:
    """Smoke-test the privately served candidate and run the ``after_deploy`` hooks on it."""
    examples, expected = examples_from_model(spec.model_uri, cache=examples_cache(project))
    smoke_test(candidate, candidate.model_name, examples, expected, expected_version=spec.version)
    hooks.call("after_deploy", environment=spec.environment, spec=spec, status=candidate)


def _undo(
    promotions: Promotions,
    commits: list[str],
    request: PromotionRequest,
    actor: str,
    reason: str,
    previous: str | None,
) -> None:
    repo, registry = promotions.repo, promotions.registry
    for sha in commits:  # newest first
        revert = repo.revert(sha, actor=actor, trailers={"Request-Id": request.id})
    sync(promotions.project, request.to_env, repo=repo)
    if previous is not None:
        registry.set_alias(request.to_env, previous)
    else:
        registry.delete_alias(request.to_env)
    failed = request.with_status("failed", f"rolled back ({revert[:10]}): {reason}")
    promotions._save(failed, actor, f"Promotion {request.id} failed", {"Revert": revert})
    registry.tag(request.candidate, {f"{TAG_PREFIX}promotion.{request.id}": "failed"})

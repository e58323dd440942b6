"""Progressive rollouts of an approved request: canary steps, shadow, blue/green.

The environment's ``rollout.strategy`` (:mod:`mlops_kit.settings_rollout`) decides. After the
candidate passed its private verification (as in every promotion), each phase is one GitOps
commit of the live spec with a :class:`~mlops_kit.deployment.Candidate` (its weight, or a
mirror) and a sync; the phase bakes for ``bake_seconds`` and is judged on the endpoint's
per-version metrics (:mod:`mlops_kit.promote.analysis`):

- **pass**: the next phase; after the last one the candidate becomes the stable version the
  classic way (:func:`~mlops_kit.promote.rollout.switch`: merge, sync, smoke test, alias);
- **fail** (``failure_limit`` times): the candidate's weight goes to 0 at once, every commit of
  the rollout is reverted, the alias stays where it was and the request is ``failed`` with
  the analysis that failed;
- **inconclusive** (too few requests): the request is ``paused``, durably (its state is in the
  request file), until a person continues or aborts it (:func:`resume`: ``mlops-kit rollout
  continue|abort``, notebook 03's panel), under the same identity rules as an approval.

Each analysed phase adds a timeline entry (time, weights, per-version requests, error rate,
p99, decision) to the request, and the finished timeline is tagged onto the version.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Literal

from mlops_kit import targets
from mlops_kit.deployment import Candidate
from mlops_kit.errors import ApprovalRefused, PromotionFailed, ToolkitError
from mlops_kit.gitops.deploy import spec_for
from mlops_kit.gitops.sync import sync
from mlops_kit.promote import analysis, approvals, signing
from mlops_kit.promote.rollout import _reason, _undo, switch
from mlops_kit.train.training import TAG_PREFIX

if TYPE_CHECKING:
    from mlops_kit.deployment import DeploymentSpec
    from mlops_kit.project import Project
    from mlops_kit.promote.approvals import PromotionRequest
    from mlops_kit.promote.promotion import Promotions
    from mlops_kit.settings_rollout import RolloutSettings

Action = Literal["continue", "abort"]


def phases(rollout: RolloutSettings) -> list[dict[str, Any]]:
    """The phases a strategy goes through before the candidate becomes the stable version."""
    if rollout.strategy == "canary":
        return [{"name": f"canary {w}%", "weight": w} for w in rollout.steps if w < 100]
    if rollout.strategy == "shadow":
        percent = rollout.mirror_percent
        return [{"name": f"shadow {percent}%", "weight": 0, "mirror": True}]
    if rollout.strategy == "blue_green":
        return [
            {"name": "green loaded beside blue", "weight": 0, "analyse": False},
            {"name": "switched to green", "weight": 100},
        ]
    return []


def start(
    promotions: Promotions,
    request: PromotionRequest,
    actor: str,
    spec: DeploymentSpec,
    previewed: bool,
) -> PromotionRequest | None:
    """Begin a progressive rollout of the verified candidate ``spec``; None when there is no
    stable version to share traffic with (a first deployment, or the candidate itself): the
    caller then switches at once."""
    project, repo = promotions.project, promotions.repo
    settings = project.settings.environment(request.to_env).rollout
    stable = repo.get(request.to_env, request.model_name)
    if stable is not None and stable.candidate is not None:
        _refuse(promotions, request, actor, _busy(promotions, request.to_env))
    if stable is None or stable.version == spec.version or not phases(settings):
        return None
    reason = _cannot_run(project, request.to_env, settings, stable, spec)
    if reason is not None:
        _refuse(promotions, request, actor, reason)
    previous = promotions.registry.by_alias(request.to_env)
    state = {
        "strategy": settings.strategy,
        "phases": phases(settings),
        "next": 0,
        "stable": stable.version,
        "previous_alias": previous.version if previous else None,
        "previewed": previewed,
        "failures": 0,
        "commits": [],
        "timeline": [],
    }
    running = replace(request, status="rolling_out", rollout=state)
    running = running.with_status("rolling_out", f"{settings.strategy} rollout started")
    promotions._save(running, actor, f"Start {settings.strategy} rollout of {request.id}")
    return _advance(promotions, running, actor)


def _busy(promotions: Promotions, environment: str) -> str:
    """Why a second rollout into ``environment`` is refused: the one routing a candidate."""
    busy = [
        r.id
        for r in promotions.all()
        if r.to_env == environment and r.status in ("paused", "rolling_out")
    ]
    return (
        f"{environment} is in the middle of another rollout ({', '.join(busy) or 'unknown'}): "
        "continue or abort it first (mlops-kit rollout continue|abort REQUEST)"
    )


def _cannot_run(
    project: Project,
    environment: str,
    settings: RolloutSettings,
    stable: DeploymentSpec,
    candidate: DeploymentSpec,
) -> str | None:
    """Why the rollout cannot run in ``environment``, found before any traffic moves: nothing
    to judge it by, or a phase the target cannot route. None when it can run."""
    try:
        analysis.metrics_source(project, environment)
    except ToolkitError as exc:
        return f"nothing to judge a {settings.strategy} by: {exc}"
    with targets.for_environment(project.settings, environment) as target:
        problems = [
            problem
            for phase in phases(settings)
            for problem in target.problems(_routed(stable, phase, settings, candidate))
        ]
    if not problems:
        return None
    found = "; ".join(dict.fromkeys(problems))
    return f"the {settings.strategy} cannot run on the {target.name} target: {found}"


def _refuse(promotions: Promotions, request: PromotionRequest, actor: str, reason: str) -> None:
    """Fail ``request`` before its rollout starts (nothing took traffic): PromotionFailed."""
    from mlops_kit.promote.promotion import branch_name

    promotions._save(request.with_status("failed", reason), actor, f"Refuse {request.id}")
    promotions.repo.delete_branch(branch_name(request.id))
    raise PromotionFailed(request.id, reason)


def _advance(promotions: Promotions, request: PromotionRequest, actor: str) -> PromotionRequest:
    """Run the phases from ``rollout.next`` on: to the switch, a pause, or a rollback."""
    project, env = promotions.project, request.to_env
    source = analysis.metrics_source(project, env)
    state = dict(request.rollout)
    candidate = spec_for(project, env, request.candidate)
    while state["next"] < len(state["phases"]):
        phase = state["phases"][state["next"]]
        try:
            verdict = _run_phase(promotions, request, actor, phase, candidate, source, state)
        except Exception as exc:  # a sync or a scrape failed: the rollout cannot judge safely
            reason = f"{phase['name']} could not run: {_reason(exc)}"
            _roll_back(promotions, replace(request, rollout=state), actor, reason)
            raise PromotionFailed(request.id, reason) from exc
        if verdict is None:  # a phase that only loads
            state["next"] += 1
            request = _save(promotions, request, state, actor, f"{phase['name']}: loaded")
            continue
        decision = state["timeline"][-1]["decision"]
        if decision == "rollback":
            reason = f"{phase['name']} failed analysis: " + "; ".join(verdict.reasons)
            request = replace(request, rollout=state)
            _roll_back(promotions, request, actor, reason)
            raise PromotionFailed(request.id, reason)
        if decision == "pause":
            state["summary"] = _summary(state)
            paused = replace(request, rollout=state).with_status(
                "paused",
                f"paused at {phase['name']}: {verdict.reasons[0]}; continue or abort: "
                f"mlops-kit rollout continue|abort {request.id} --as NAME",
            )
            promotions._save(paused, actor, f"Pause rollout of {request.id} at {phase['name']}")
            _evidence(promotions, paused)
            return paused
        if decision == "next":
            state["next"] += 1
        request = _save(promotions, request, state, actor, f"{phase['name']}: {decision}")
    # Back to the plain stable spec (not synced: the merge below follows at once), so that
    # the merge's diff is the whole change and reverting it restores exactly this.
    stable = promotions.repo.get(env, request.model_name)
    if stable is not None and stable.candidate is not None:
        sha = promotions.repo.write(
            stable.model_copy(update={"candidate": None}),
            actor=actor,
            message=f"Rollout {request.model_name} v{request.candidate} in {env}: every phase "
            f"passed ({request.id})",
            trailers={**promotions._trailers(request), "Rollout-Phase": "passed"},
        )
        if sha:
            state["commits"] = [sha, *state["commits"]]
    state["summary"] = _summary(state)
    request = replace(request, rollout=state)
    done = switch(
        promotions,
        request,
        actor,
        candidate,
        state["previewed"],
        state["previous_alias"],
        state["commits"],
    )
    _evidence(promotions, done)
    return done


def _run_phase(
    promotions: Promotions,
    request: PromotionRequest,
    actor: str,
    phase: dict[str, Any],
    candidate: DeploymentSpec,
    source: analysis.MetricsSource,
    state: dict[str, Any],
) -> analysis.Verdict | None:
    """Commit and sync one phase, bake, judge; its timeline entry goes into ``state``.

    None for a phase that is not analysed (blue/green's loading of green).
    """
    project, env, model = promotions.project, request.to_env, request.model_name
    settings = project.settings.environment(env).rollout
    sha = _commit(promotions, request, actor, phase, settings, candidate)
    if sha:
        state["commits"] = [sha, *state["commits"]]
    sync(project, env, repo=promotions.repo)
    if not phase.get("analyse", True):
        state["timeline"] = [*state["timeline"], _entry(phase, None, None, "next", [])]
        return None
    source.begin(env, model)
    time.sleep(settings.bake_seconds)
    role = "shadow" if phase.get("mirror") else "candidate"
    stable = source.metrics_for(env, model, state["stable"], "stable")
    seen = source.metrics_for(env, model, request.candidate, role)
    verdict = analysis.judge(settings, stable, seen)
    if verdict.outcome == "pass":
        decision = "next"
    elif verdict.outcome == "inconclusive":
        decision = "pause"
    else:
        state["failures"] += 1
        limit = settings.analysis.failure_limit
        decision = "rollback" if state["failures"] >= limit else "retry"
    entry = _entry(phase, stable, seen, decision, verdict.reasons)
    state["timeline"] = [*state["timeline"], entry]
    return verdict


def _routed(
    stable: DeploymentSpec,
    phase: dict[str, Any],
    settings: RolloutSettings,
    candidate: DeploymentSpec,
) -> DeploymentSpec:
    """The live ``stable`` spec with ``candidate`` beside it as this phase routes it."""
    mirror = bool(phase.get("mirror"))
    return stable.model_copy(
        update={
            "candidate": Candidate(
                version=candidate.version,
                model_uri=candidate.model_uri,
                run_id=candidate.run_id,
                weight=phase["weight"],
                mirror=mirror,
                mirror_percent=settings.mirror_percent if mirror else 100,
                sticky_header=settings.sticky_header,
            )
        }
    )


def _commit(
    promotions: Promotions,
    request: PromotionRequest,
    actor: str,
    phase: dict[str, Any],
    settings: RolloutSettings,
    candidate: DeploymentSpec,
) -> str | None:
    """Write the live spec with the candidate at this phase's weight; the commit, if any."""
    repo = promotions.repo
    stable = repo.get(request.to_env, request.model_name)
    assert stable is not None
    return repo.write(
        _routed(stable, phase, settings, candidate),
        actor=actor,
        message=f"Rollout {request.model_name} v{request.candidate} in {request.to_env}: "
        f"{phase['name']} ({request.id})",
        trailers={**promotions._trailers(request), "Rollout-Phase": phase["name"]},
    )


def _entry(
    phase: dict[str, Any],
    stable: analysis.VersionFigures | None,
    candidate: analysis.VersionFigures | None,
    decision: str,
    reasons: list[str],
    by: str | None = None,
) -> dict[str, Any]:
    mirror = bool(phase.get("mirror"))
    entry: dict[str, Any] = {
        "at": approvals.now(),
        "phase": phase["name"],
        "weights": {
            "stable": 100 - (0 if mirror else phase["weight"]),
            "candidate": 0 if mirror else phase["weight"],
        },  # fmt: skip
        "decision": decision,
        "reasons": reasons,
    }
    if stable is not None and candidate is not None:
        entry["stable"] = stable.to_dict()
        entry["candidate"] = candidate.to_dict()
        drift = analysis.prediction_drift(stable, candidate)
        entry["prediction_drift"] = None if drift is None else round(drift, 4)
    if by is not None:
        entry["by"] = by
    return entry


def _save(
    promotions: Promotions,
    request: PromotionRequest,
    state: dict[str, Any],
    actor: str,
    what: str,
) -> PromotionRequest:
    updated = replace(request, rollout=state).with_status("rolling_out", what)
    promotions._save(updated, actor, f"Rollout {request.id}: {what}")
    return updated


def _roll_back(
    promotions: Promotions, request: PromotionRequest, actor: str, reason: str
) -> PromotionRequest:
    """Weight 0 at once, then revert every commit of the rollout; the request ``failed``."""
    from mlops_kit.promote.promotion import branch_name

    state = dict(request.rollout)
    stop = {"name": "candidate to weight 0", "weight": 0}
    settings = promotions.project.settings.environment(request.to_env).rollout
    candidate = spec_for(promotions.project, request.to_env, request.candidate)
    zero = _commit(promotions, request, actor, stop, settings, candidate)
    sync(promotions.project, request.to_env, repo=promotions.repo)
    commits = ([zero] if zero else []) + list(state["commits"])
    state["summary"] = _summary(state, rolled_back=True)
    request = replace(request, rollout=state)
    _undo(promotions, commits, request, actor, reason, state["previous_alias"])
    promotions.repo.delete_branch(branch_name(request.id))
    failed = promotions.get(request.id)
    _evidence(promotions, failed)
    return failed


def _summary(state: dict[str, Any], rolled_back: bool = False) -> str:
    """``canary 10% -> 50% -> 100%`` and how it ended, in one line."""
    steps = [e["phase"] for e in state["timeline"] if e["decision"] in ("next", "continue")]
    if rolled_back:
        return f"{state['strategy']} rolled back after " + (" -> ".join(steps) or "its start")
    return f"{state['strategy']}: " + " -> ".join([*steps, "100%"])


def _evidence(promotions: Promotions, request: PromotionRequest) -> None:
    """Tag the version with the rollout's outcome and log its timeline on the version's run."""
    state = request.rollout
    registry = promotions.registry
    registry.tag(
        request.candidate,
        {f"{TAG_PREFIX}rollout.{request.id}": f"{request.status}: {state.get('summary', '')}"},
    )
    info = registry.get(request.candidate)
    if info.run_id:
        registry.client.log_text(
            info.run_id,
            json.dumps({"request": request.id, "status": request.status, **state}, indent=2),
            f"rollouts/{request.id}.json",
        )


def timeline_rows(request: PromotionRequest) -> list[dict[str, Any]]:
    """The rollout's timeline as flat rows: one per phase decision (CLI, tables)."""
    rows = []
    for entry in request.rollout.get("timeline", []):
        stable, cand = entry.get("stable") or {}, entry.get("candidate") or {}
        rows.append(
            {
                "at": entry["at"][11:19],
                "phase": entry["phase"],
                "weights": f"{entry['weights']['stable']}/{entry['weights']['candidate']}",
                "requests": f"{stable.get('requests', '-')}/{cand.get('requests', '-')}",
                "errors": f"{_pct(stable.get('error_rate'))}/{_pct(cand.get('error_rate'))}",
                "p99_ms": f"{_num(stable.get('p99_ms'))}/{_num(cand.get('p99_ms'))}",
                "agreement": _pct(cand.get("agreement")),
                "decision": entry["decision"] + (f" by {entry['by']}" if entry.get("by") else ""),
                "why": "; ".join(entry.get("reasons", [])),
            }
        )
    return rows


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def resume(
    promotions: Promotions,
    request_id: str,
    actor: str,
    action: Action,
    comment: str = "",
    *,
    signing_key: str | None = None,
) -> PromotionRequest:
    """A person's answer to a paused rollout: ``continue`` (the paused phase counts as passed)
    or ``abort`` (roll back). Signed and checked like an approval; ApprovalRefused otherwise.

    A request still ``rolling_out`` once the promotion lock is ours was left by a process that
    died mid-phase: ``abort`` rolls it back, ``continue`` runs the interrupted phase again.
    """
    from mlops_kit.promote.promotion import promotion_lock

    actor = actor.strip()
    with promotion_lock(promotions.project):
        request = promotions.get(request_id)
        if request.status not in ("paused", "rolling_out"):
            raise ApprovalRefused(request.id, actor, f"the rollout is {request.status}, not paused")
        policy = promotions.project.settings.environment(request.to_env).approval
        if not actor:
            raise ApprovalRefused(request.id, actor, "a name is required")
        if policy.approvers and actor not in policy.approvers:
            allowed = ", ".join(policy.approvers)
            raise ApprovalRefused(
                request.id, actor, f"not on the approver list for {request.to_env} ({allowed})"
            )
        at = approvals.now()
        signature = signing.attest(
            policy, request, actor, action, comment, at, signing_key, promotions.signers.text
        )
        decision = approvals.Decision(actor, action, comment, at, policy.identity, signature)
        state = dict(request.rollout)
        phase = state["phases"][state["next"]]
        entry = _entry(phase, None, None, action, [comment] if comment else [], by=actor)
        state["timeline"] = [*state["timeline"], entry]
        request = replace(request, decisions=(*request.decisions, decision), rollout=state)
        if action == "abort":
            reason = f"aborted by {actor} at {phase['name']}" + (f": {comment}" if comment else "")
            return _roll_back(promotions, request, actor, reason)
        if request.status == "paused":
            state["next"] += 1
        request = _save(promotions, request, state, actor, f"continued by {actor}")
        return _advance(promotions, request, actor)

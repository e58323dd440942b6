"""The approvals model: promotion requests and the policy that decides on them. Pure: no I/O.

The widget, the CLI and papermill parameters all go through :func:`decide`, so one rule set
applies however a person approves.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

from mlops_kit.display import Figure, Rich
from mlops_kit.errors import ApprovalRefused
from mlops_kit.redact import secret_reason
from mlops_kit.settings import ApprovalPolicy

Status = Literal[
    "pending", "approved", "rejected", "rolling_out", "paused", "rolled_out", "failed", "superseded"
]
DecisionKind = Literal["approve", "reject", "continue", "abort"]
"""Approve or reject a pending request; continue or abort a paused progressive rollout."""
OPEN: tuple[Status, ...] = ("pending",)


@dataclass(frozen=True)
class Decision:
    """One person's approval or rejection, with their comment, and how the name was checked.

    ``identity`` is the policy's mode when the decision was made; under ``ssh``, ``signature``
    is the armored SSH signature of :func:`message` by the actor's key.
    """

    actor: str
    kind: DecisionKind
    comment: str = ""
    at: str = field(default_factory=lambda: now())
    identity: str = "none"
    signature: str = ""


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def message(
    request: PromotionRequest, actor: str, kind: DecisionKind, comment: str, at: str
) -> str:
    """The exact text a decision's signature covers: what is decided, by whom, when."""
    return "".join(
        f"{key}: {json.dumps(value)}\n"
        for key, value in (
            ("mlops-kit decision", 1),
            ("request", request.id),
            ("model", request.model_name),
            ("version", request.candidate),
            ("from", request.from_env),
            ("to", request.to_env),
            ("actor", actor),
            ("decision", kind),
            ("comment", comment),
            ("at", at),
        )
    )


def decision_message(request: PromotionRequest, decision: Decision) -> str:
    """:func:`message` of a recorded decision, to re-verify its signature."""
    return message(request, decision.actor, decision.kind, decision.comment, decision.at)


@dataclass(frozen=True)
class PromotionRequest(Rich):
    """A request to move a model version from one environment to the next, with its evidence."""

    id: str
    model_name: str
    from_env: str
    to_env: str
    candidate: str
    current: str | None
    requested_by: str
    requested_at: str
    evidence: dict[str, Any] = field(default_factory=dict)
    status: Status = "pending"
    decisions: tuple[Decision, ...] = ()
    outcome: str = ""
    rollout: dict[str, Any] = field(default_factory=dict)
    """A progressive rollout's state and timeline (:mod:`mlops_kit.promote.progressive`)."""

    @property
    def approvers(self) -> list[str]:
        """Distinct people who approved, in order."""
        seen: list[str] = []
        for d in self.decisions:
            if d.kind == "approve" and d.actor not in seen:
                seen.append(d.actor)
        return seen

    def to_dict(self) -> dict[str, Any]:
        """Plain data, for the request file."""
        data = asdict(self)
        data["decisions"] = [asdict(d) for d in self.decisions]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PromotionRequest:
        """Inverse of :meth:`to_dict`."""
        decisions = tuple(Decision(**d) for d in data.get("decisions", ()))
        return cls(**{**data, "decisions": decisions})

    def with_status(self, status: Status, outcome: str = "") -> PromotionRequest:
        """A copy with a new status (and why)."""
        return replace(self, status=status, outcome=outcome or self.outcome)

    def _repr_html_(self) -> str:
        from mlops_kit.promote.evidence import request_html  # the view, static HTML

        return request_html(self)

    def _figure_(self) -> Figure:
        from mlops_kit.promote.evidence import request_figure

        return request_figure(self)


def check(
    policy: ApprovalPolicy,
    request: PromotionRequest,
    actor: str,
    kind: DecisionKind,
    *,
    verified: bool = False,
) -> None:
    """Raise ApprovalRefused when ``actor`` may not make this decision on ``request``.

    ``verified`` says the caller checked that the decision comes from ``actor`` the way the
    policy's ``identity`` demands (a signature, the CI platform's variable); under
    ``identity: none`` names are taken on trust.
    """
    actor = actor.strip()
    if not actor:
        raise ApprovalRefused(request.id, actor, "an approver name is required")
    if policy.identity != "none" and not verified:
        raise ApprovalRefused(
            request.id, actor, f"the approver is not verified (identity: {policy.identity})"
        )
    if request.status not in OPEN:
        raise ApprovalRefused(request.id, actor, f"the request is already {request.status}")
    if policy.approvers and actor not in policy.approvers:
        allowed = ", ".join(policy.approvers)
        raise ApprovalRefused(
            request.id, actor, f"not on the approver list for {request.to_env} ({allowed})"
        )
    if kind == "approve":
        if policy.four_eyes and actor == request.requested_by:
            raise ApprovalRefused(
                request.id, actor, "four-eyes rule: the requester cannot approve their own request"
            )
        if actor in request.approvers:
            raise ApprovalRefused(request.id, actor, "has already approved this request")


def decide(
    policy: ApprovalPolicy,
    request: PromotionRequest,
    actor: str,
    kind: DecisionKind,
    comment: str = "",
    *,
    verified: bool = False,
    at: str | None = None,
    signature: str = "",
) -> PromotionRequest:
    """The request after ``actor``'s decision: still pending, approved, or rejected."""
    check(policy, request, actor, kind, verified=verified)
    if kind == "reject" and not comment.strip():
        raise ApprovalRefused(request.id, actor, "a rejection needs a reason")
    problem = secret_reason("comment", comment)
    if problem is not None:
        raise ApprovalRefused(request.id, actor, f"the comment is refused: {problem}")
    decision = Decision(actor.strip(), kind, comment, at or now(), policy.identity, signature)
    updated = replace(request, decisions=(*request.decisions, decision))
    if kind == "reject":
        return updated.with_status("rejected", f"rejected by {actor}: {comment}")
    if len(updated.approvers) >= policy.min_approvals:
        return updated.with_status("approved", "approved by " + ", ".join(updated.approvers))
    return updated


def approvals_needed(policy: ApprovalPolicy, request: PromotionRequest) -> int:
    """How many more distinct approvals the request needs."""
    return max(0, policy.min_approvals - len(request.approvers))

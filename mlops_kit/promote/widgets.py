"""The approval panel: a thin ipywidgets view over the approvals model and Promotions.decide.

Nothing here decides anything: the buttons call :meth:`Promotions.decide`, the same code path
as ``mlops-kit approve`` and the notebook's headless parameters.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

from mlops_kit import display
from mlops_kit.errors import ToolkitError
from mlops_kit.promote.evidence import STATUS_PASSED, request_html

if TYPE_CHECKING:
    from mlops_kit.promote.approvals import PromotionRequest
    from mlops_kit.promote.promotion import Promotions


def evidence_html(request: PromotionRequest) -> str:
    """The request and its evidence as an HTML fragment (see :mod:`mlops_kit.promote.evidence`)."""
    return request_html(request)


def static_html(request: PromotionRequest) -> str:
    """What the panel shows where no widget can run (an HTML report, a viewer without kernel)."""
    command = f"mlops-kit approve {request.id} --as NAME"
    if request.status != "pending":
        line = f"{request.status}: {request.outcome}" if request.outcome else request.status
        return display.verdict(STATUS_PASSED.get(request.status), line, "decided")
    return (
        f'<p class="mlops-approval-static">{display.badge(None, "pending")} '
        f"The Approve / Reject panel runs in JupyterLab with a live kernel; "
        f"or decide with <code>{html.escape(command)}</code>.</p>"
    )


class ApprovalPanel:
    """Evidence, approver name, comment, Approve and Reject buttons, and the outcome."""

    def __init__(
        self,
        promotions: Promotions,
        request: PromotionRequest,
        approver: str = "",
        signing_key: str = "",
    ) -> None:
        import ipywidgets as w

        self.promotions = promotions
        self.request = request
        self.signing_key = signing_key or None
        self.evidence = w.HTML(evidence_html(request))
        self.approver = w.Text(value=approver, description="Approver", placeholder="your name")
        self.comment = w.Textarea(description="Comment", placeholder="why (required to reject)")
        self.approve_button = w.Button(description="Approve", button_style="success", icon="check")
        self.reject_button = w.Button(description="Reject", button_style="danger", icon="times")
        self.outcome = w.HTML()
        self.approve_button.on_click(lambda _: self.decide("approve"))
        self.reject_button.on_click(lambda _: self.decide("reject"))
        for widget, role in (
            (self.approver, "mlops-approver"),
            (self.comment, "mlops-comment"),
            (self.approve_button, "mlops-approve"),
            (self.reject_button, "mlops-reject"),
        ):
            widget.add_class("mlops-approval")
            widget.add_class(role)  # stable hooks for tests and user CSS
        self.widget = w.VBox(
            [
                self.evidence,
                self.approver,
                self.comment,
                w.HBox([self.approve_button, self.reject_button]),
                self.outcome,
            ]
        )
        self.widget.add_class("mlops-approval-panel")

    def decide(self, kind: str) -> None:
        """Button handler: record the decision and show what happened."""
        self._busy(True)
        self.outcome.value = "<p>working…</p>"
        try:
            self.request = self.promotions.decide(
                self.request.id,
                self.approver.value,
                "approve" if kind == "approve" else "reject",
                self.comment.value,
                signing_key=self.signing_key,
            )
        except ToolkitError as exc:
            self.outcome.value = (
                f'<p class="mlops-outcome" style="color:#cf222e">{html.escape(str(exc))}</p>'
            )
            self._busy(False)
            return
        self.evidence.value = evidence_html(self.request)
        self.outcome.value = (
            f'<p class="mlops-outcome" style="color:#1a7f37">{self.request.status}: '
            f"{html.escape(self.request.outcome)}</p>"
        )
        self._busy(self.request.status != "pending")

    def _busy(self, disabled: bool) -> None:
        self.approve_button.disabled = disabled
        self.reject_button.disabled = disabled

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        # The widget view for JupyterLab; static HTML for reports (which drop the view).
        bundle = dict(self.widget._repr_mimebundle_(**kwargs) or {})
        bundle["text/html"] = static_html(self.request)
        return bundle


def rollout_html(request: PromotionRequest) -> str:
    """A progressive rollout's state and timeline as static HTML."""
    from mlops_kit.promote.progressive import timeline_rows

    state = request.rollout
    if not state:
        return display.paragraph(
            f"{html.escape(request.id)} has no progressive rollout ({request.status})."
        )
    rows = timeline_rows(request)
    passed = {"rolled_out": True, "failed": False}.get(request.status)
    line = f"{state.get('strategy')} rollout: {request.status}: {request.outcome}"
    hint = ""
    if request.status == "paused":
        hint = display.paragraph(
            "Continue or abort here, or with "
            f"<code>mlops-kit rollout continue|abort {html.escape(request.id)} --as NAME</code>."
        )
    return (
        display.verdict(passed, line, request.status) + (display.table(rows) if rows else "") + hint
    )


class RolloutPanel:
    """A progressive rollout's timeline with Continue and Abort for a paused one.

    The buttons call :func:`mlops_kit.promote.progressive.resume`, as ``mlops-kit rollout
    continue|abort`` does, under the same identity rules as an approval.
    """

    def __init__(
        self,
        promotions: Promotions,
        request: PromotionRequest,
        actor: str = "",
        signing_key: str = "",
    ) -> None:
        import ipywidgets as w

        self.promotions = promotions
        self.request = request
        self.signing_key = signing_key or None
        self.timeline = w.HTML(rollout_html(request))
        self.actor = w.Text(value=actor, description="Name", placeholder="your name")
        self.comment = w.Textarea(description="Comment", placeholder="why")
        self.continue_button = w.Button(description="Continue", button_style="success")
        self.abort_button = w.Button(description="Abort", button_style="danger", icon="times")
        self.refresh_button = w.Button(description="Refresh", icon="refresh")
        self.outcome = w.HTML()
        self.continue_button.on_click(lambda _: self.resume("continue"))
        self.abort_button.on_click(lambda _: self.resume("abort"))
        self.refresh_button.on_click(lambda _: self.refresh())
        for widget, role in (
            (self.continue_button, "mlops-continue"),
            (self.abort_button, "mlops-abort"),
            (self.refresh_button, "mlops-refresh"),
        ):
            widget.add_class(role)
        buttons = w.HBox([self.continue_button, self.abort_button, self.refresh_button])
        self.widget = w.VBox([self.timeline, self.actor, self.comment, buttons, self.outcome])
        self.widget.add_class("mlops-rollout-panel")
        self._enable()

    def refresh(self) -> None:
        """Read the request again (a rollout started by the approval panel moves on its own)."""
        self.request = self.promotions.get(self.request.id)
        self.timeline.value = rollout_html(self.request)
        self._enable()

    def resume(self, action: str) -> None:
        """Button handler: continue or abort the paused rollout and show what happened."""
        from mlops_kit.promote.progressive import resume

        self.continue_button.disabled = self.abort_button.disabled = True
        self.outcome.value = "<p>working…</p>"
        try:
            resume(
                self.promotions,
                self.request.id,
                self.actor.value,
                "continue" if action == "continue" else "abort",
                self.comment.value,
                signing_key=self.signing_key,
            )
            self.outcome.value = ""
        except ToolkitError as exc:
            self.outcome.value = (
                f'<p class="mlops-outcome" style="color:#cf222e">{html.escape(str(exc))}</p>'
            )
        self.refresh()

    def _enable(self) -> None:
        paused = self.request.status == "paused"
        self.continue_button.disabled = self.abort_button.disabled = not paused

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        bundle = dict(self.widget._repr_mimebundle_(**kwargs) or {})
        bundle["text/html"] = rollout_html(self.request)
        return bundle

"""The approval panel: a thin ipywidgets view over the approvals model and Promotions.decide.

Nothing here decides anything: the buttons call :meth:`Promotions.decide`, the same code path
as ``mlops-kit approve`` and the notebook's headless parameters.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

from mlops_kit.errors import ToolkitError

if TYPE_CHECKING:
    from mlops_kit.promote.approvals import PromotionRequest
    from mlops_kit.promote.promotion import Promotions


def evidence_html(request: PromotionRequest) -> str:
    """The request and its evidence as an HTML fragment."""
    ev = request.evidence
    metrics = ev.get("metrics", {})
    cand, cur, diff = (
        metrics.get("candidate", {}),
        metrics.get("current", {}),
        metrics.get("diff", {}),
    )
    rows = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{v:.4f}</td>"
        f"<td>{cur[k]:.4f}</td><td>{diff.get(k, 0):+.4f}</td></tr>"
        if k in cur
        else f"<tr><td>{html.escape(k)}</td><td>{v:.4f}</td><td>-</td><td>-</td></tr>"
        for k, v in sorted(cand.items())
    )
    current = f"v{request.current}" if request.current else "nothing yet"
    load = ev.get("load_test") or {}
    load_text = ", ".join(f"{k}={v}" for k, v in load.items()) if load else "not run"
    reports = "".join(f"<li>{html.escape(p)}</li>" for p in ev.get("reports", []))
    gate = ev.get("gate", {})
    smoke = ev.get("smoke", {})
    esc = html.escape
    parts = [
        f"<h3>Promote {esc(request.model_name)} v{request.candidate} "
        f"from {request.from_env} to {request.to_env}</h3>",
        f"<p>Request <code>{esc(request.id)}</code> by <b>{esc(request.requested_by)}</b> "
        f"at {request.requested_at}; {request.to_env} serves {current}. "
        f"Status: <b>{request.status}</b></p>",
        "<table><tr><th>metric</th><th>candidate</th><th>current</th><th>diff</th></tr>"
        f"{rows}</table>",
        f"<p>Gate: <b>{esc(gate.get('verdict', 'not run'))}</b> {esc(gate.get('detail', ''))}<br>",
        f"Smoke test on {request.from_env}: <b>{esc(smoke.get('verdict', 'not run'))}</b><br>",
        f"Load test: {esc(load_text)}</p>",
        f"<p>Reports:</p><ul>{reports}</ul>" if reports else "",
    ]
    return "".join(parts)


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

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

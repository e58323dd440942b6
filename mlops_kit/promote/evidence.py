"""A promotion request's evidence: gathered from the registry (:func:`gather`), and shown as
static HTML, what an approver reads (:func:`request_html`).

The same fragment is the request's own display in a notebook (``PromotionRequest._repr_html_``),
the top of the approval panel, and what the HTML report shows with no script running.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_kit import display as d

if TYPE_CHECKING:
    from mlops_kit.project import Project
    from mlops_kit.promote.approvals import PromotionRequest
    from mlops_kit.registry.client import Registry

LINEAGE_KEYS = ("git_commit", "data_fingerprint", "pipeline_run_id")
REPORT_ENV = "MLOPS_KIT_REPORT"
"""The HTML report the running notebook renders to (``mlops-kit run`` sets it per notebook)."""

STATUS_PASSED = {"rolled_out": True, "approved": True, "rejected": False, "failed": False}
"""How each request status is badged; pending (and anything else) is neutral."""


def request_html(request: PromotionRequest) -> str:
    """The request, its decisions and its evidence: metric table, checks, lineage, reports."""
    ev = request.evidence
    current = f"v{request.current}" if request.current else "nothing yet"
    parts = [
        d.paragraph(
            f"Request <code>{d.esc(request.id)}</code> by <b>{d.esc(request.requested_by)}</b>",
            f"at {d.esc(request.requested_at)}; {d.esc(request.to_env)} served {current}",
            "when it was opened.",
        ),
        _metrics(ev.get("metrics") or {}),
        _checks(request),
    ]
    if request.decisions:
        rows = [
            {"by": x.actor, "decision": x.kind, "comment": x.comment, "at": x.at}
            for x in request.decisions
        ]
        parts.append(d.table(rows))
    if request.outcome:
        parts.append(d.verdict(STATUS_PASSED.get(request.status), request.outcome, request.status))
    if ev.get("lineage"):
        parts.append(d.fields(ev["lineage"], title="lineage"))
    reports = list(ev.get("reports") or [])
    load_report = (ev.get("load_test") or {}).get("report")
    if load_report and load_report not in reports:
        reports.append(load_report)
    if reports:
        links = "".join(f"<li>{d.link(p)}</li>" for p in reports)
        parts.append(f"<p>Reports:</p><ul>{links}</ul>")
    title = (
        f"Promote {request.model_name} v{request.candidate} "
        f"from {request.from_env} to {request.to_env}"
    )
    return d.section(title, *parts, passed=STATUS_PASSED.get(request.status), status=request.status)


def request_figure(request: PromotionRequest) -> d.Figure:
    """The request's line in a report's headline."""
    tail = f": {request.outcome}" if request.outcome else ""
    return d.Figure(
        "promotion", f"{request.id} {request.status}{tail}", STATUS_PASSED.get(request.status)
    )


def _metrics(metrics: dict[str, Any]) -> str:
    candidate = metrics.get("candidate") or {}
    current = metrics.get("current") or {}
    diff = metrics.get("diff") or {}
    if not candidate:
        return "<p>No metrics recorded for the candidate.</p>"
    td, right = f'<td style="{d.TD_STYLE}">', f'<td style="{d.TD_STYLE};text-align:right">'
    rows = []
    for name, value in sorted(candidate.items()):
        delta = diff.get(name)
        shown = "–" if delta is None else f"{delta:+.4f}"
        colour = d.INFO if not delta else (d.PASS if delta > 0 else d.FAIL)
        was = "–" if name not in current else f"{current[name]:.4f}"
        rows.append(
            f"<tr>{td}{d.esc(name)}</td>{right}{value:.4f}</td>{right}{was}</td>"
            f'<td style="{d.TD_STYLE};text-align:right;color:{colour}">{shown}</td></tr>'
        )
    head = "".join(f'<th style="{d.TH_STYLE}">{h}</th>' for h in ("metric",))
    head += "".join(
        f'<th style="{d.TH_STYLE};text-align:right">{h}</th>'
        for h in ("candidate", "current", "diff")
    )
    return (
        f'<table class="mlops-table mlops-metrics"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _checks(request: PromotionRequest) -> str:
    ev = request.evidence
    gate = ev.get("gate") or {}
    smoke = ev.get("smoke") or {}
    load = ev.get("load_test") or {}
    rows = [
        ("quality gate", gate.get("verdict"), gate.get("detail", "")),
        (f"smoke test on {request.from_env}", smoke.get("verdict"), smoke.get("detail", "")),
        (f"load test on {load.get('environment') or request.from_env}", load.get("verdict"),
         _load_detail(load)),
    ]  # fmt: skip
    return d.table(
        [
            {"check": name, "verdict": d.Html(d.badge(_passed(v), v or "not run")), "detail": why}
            for name, v, why in rows
        ]
    )


def _passed(verdict: Any) -> bool | None:
    return {"passed": True, "failed": False}.get(str(verdict or "").lower())


def _load_detail(load: dict[str, Any]) -> str:
    if not load:
        return ""
    figures = []
    for key, unit in (("p99_ms", " ms p99"), ("rps", " req/s")):
        if load.get(key) not in (None, ""):
            figures.append(f"{_number(load[key]):.1f}{unit}")
    if load.get("error_rate") not in (None, ""):
        figures.append(f"errors {_number(load['error_rate']):.2%}")
    if load.get("requests") not in (None, ""):
        figures.append(f"over {load['requests']} requests")
    reasons = load.get("reasons")
    if isinstance(reasons, list):
        reasons = "; ".join(reasons)
    tail = f" ({reasons})" if reasons and reasons != "all objectives met" else ""
    return ", ".join(figures) + tail


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def gather(
    project: Project, registry: Registry, candidate: str, current: str | None, from_env: str
) -> dict[str, Any]:
    """What an approver needs to decide on ``candidate`` against ``current``."""
    cand = registry.get(candidate)
    metrics: dict[str, Any] = {"candidate": _run_metrics(project, cand.run_id)}
    if current is not None:
        metrics["current"] = _run_metrics(project, registry.get(current).run_id)
        metrics["diff"] = {
            k: round(v - metrics["current"][k], 6)
            for k, v in metrics["candidate"].items()
            if k in metrics["current"]
        }
    tags = cand.lineage
    reports = report_paths(project.settings.reports_dir)
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


def _run_metrics(project: Project, run_id: str | None) -> dict[str, float]:
    if not run_id:
        return {}
    return dict(project.client.get_run(run_id).data.metrics)


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

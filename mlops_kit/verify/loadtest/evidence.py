"""Where a verdict is kept: tags on the model version, evidence on its pending promotion request."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlops_kit import display

if TYPE_CHECKING:
    from mlops_kit.project import Project
    from mlops_kit.promote.approvals import PromotionRequest
    from mlops_kit.verify.loadtest.results import LoadTestRun
    from mlops_kit.verify.loadtest.verdict import SloVerdict


@dataclass(frozen=True)
class Recorded(display.Rich):
    """Where a load test's verdict went: the version's tags, and the request it joined."""

    model: str
    tags: dict[str, str]
    promotion_request: str | None
    """The pending request the evidence was attached to; None when there was none."""

    def _repr_html_(self) -> str:
        joined = (
            f"joined request <code>{display.esc(self.promotion_request)}</code> as evidence"
            if self.promotion_request
            else "no pending promotion request of this version to attach it to"
        )
        return display.paragraph(
            f"Recorded on {display.esc(self.model)} as {len(self.tags)} tags; {joined}."
        ) + display.fields(self.tags)


def record(project: Project, run: LoadTestRun, verdict: SloVerdict) -> Recorded:
    """Tag the version with the verdict; attach it to the version's pending promotion request.

    Tags are ``mlops.loadtest.<environment>.verdict|p99_ms|rps|error_rate|...``. The evidence
    ``load_test`` goes to the newest pending request that promotes this version out of this
    environment, if there is one. Returns what was recorded where.
    """
    from mlops_kit.promote.promotion import Promotions, current_report
    from mlops_kit.registry.client import Registry

    tags = verdict.tags(run.environment)
    Registry(project).tag(run.version, tags)
    promotions = Promotions(project)
    matching = [
        r
        for r in promotions.pending()
        if r.candidate == run.version and r.from_env == run.environment
    ]
    request: PromotionRequest | None = None
    if matching:
        evidence = {
            **verdict.to_dict(),
            "environment": run.environment,
            "version": run.version,
            "users": run.result.users,
            "duration_s": run.result.duration_s,
            "latency_ms": run.result.latency_ms,
            "by_status": run.result.by_status,
            "server": run.server.to_dict() if run.server else None,
            "at": run.result.started_at,
            "report": current_report(),  # where mlops-kit run renders this notebook, if it does
        }
        request = promotions.attach_evidence("load_test", evidence, request_id=matching[-1].id)
    return Recorded(f"{run.model_name} v{run.version}", tags, request.id if request else None)

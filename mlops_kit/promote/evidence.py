"""The evidence a promotion request carries: metric diff, gate verdict, smoke and load-test
results, lineage and the reports of the run that produced the candidate."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlops_kit.project import Project
    from mlops_kit.registry.client import Registry

LINEAGE_KEYS = ("git_commit", "data_fingerprint", "pipeline_run_id")


def gather(
    project: Project, registry: Registry, candidate: str, current: str | None, from_env: str
) -> dict[str, Any]:
    """What an approver needs to decide on ``candidate`` against ``current``."""
    cand = registry.get(candidate)
    metrics: dict[str, Any] = {"candidate": _metrics(project, cand.run_id)}
    if current is not None:
        metrics["current"] = _metrics(project, registry.get(current).run_id)
        metrics["diff"] = {
            k: round(v - metrics["current"][k], 6)
            for k, v in metrics["candidate"].items()
            if k in metrics["current"]
        }
    tags = cand.lineage
    reports = sorted(str(p) for p in project.settings.reports_dir.glob("*.html"))
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


def _metrics(project: Project, run_id: str | None) -> dict[str, float]:
    if not run_id:
        return {}
    return dict(project.client.get_run(run_id).data.metrics)

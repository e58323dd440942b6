"""One scheduled run: retrain, gate, stage, smoke, load-test, request — and, if allowed, promote.

A run executes the pipeline notebooks headless, exactly as ``mlops-kit run`` does, so a
scheduled run leaves the same reports, lineage and evidence as a person's:

1. notebook 02 — train and register, gate against the champion, deploy staging, smoke-test
   it, open the promotion request (as the schedule's owner);
2. notebook 04 — a bounded load test of staging on loopback, its verdict attached to the
   request as evidence;
3. notebook 03 — only when the production policy says ``auto_promote: true``: the
   schedule's identity approves the request, the decision signed with the schedule's own key
   and verified against ``allowed_signers`` like anyone's; every rule of the policy still
   applies (approver list, four eyes, minimum approvals), and so do the rollout's checks.

Nothing here moves production by itself: without ``auto_promote`` a run ends at the request.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from mlops_kit import display
from mlops_kit.errors import ConfigError

if TYPE_CHECKING:
    from mlops_kit.project import Project
    from mlops_kit.settings import EnvironmentSettings

PIPELINE = "02"
LOAD_TEST = "04"
REVIEW = "03"


@dataclass(frozen=True)
class RetrainResult(display.Rich):
    """What a run did: the data it saw, the version it staged, the request, the promotion."""

    status: Literal["retrained", "skipped"]
    fingerprint: str
    version: str = ""
    request: str = ""
    promotion: str = ""
    """The request's status after the run: ``pending``, or ``rolled_out`` when auto-promoted."""
    detail: str = ""
    reports: list[str] = field(default_factory=list)

    def summary(self) -> str:
        if self.status == "skipped":
            return self.detail
        text = f"v{self.version} is on staging; promotion request {self.request}: {self.promotion}"
        return f"{text} ({self.detail})" if self.detail else text

    def _repr_html_(self) -> str:
        return display.fields(
            {k: v for k, v in self.__dict__.items() if v not in ("", [])}, title="retrain"
        )


def schedule_key(project: Project) -> Path:
    """Where the schedule identity's private key is (``schedule.signing_key`` or the default)."""
    configured = project.settings.schedule.signing_key
    if configured is not None:
        return Path(configured).expanduser()
    return project.state_dir / "keys" / f"{project.settings.schedule.identity}.key"


def create_schedule_key(project: Project) -> Path:
    """The schedule identity's key pair, created when missing; returns the private key's path."""
    from mlops_kit.promote import signing

    identity = project.settings.schedule.identity
    return signing.create_key(schedule_key(project), f"{identity} mlops-kit schedule")


def check_parameters(project: Project, parameters: dict[str, Any]) -> None:
    """ParameterError for a parameter no notebook of a run declares (before a schedule keeps
    it and every run fails on it); training parameters are checked by the CLI's preflight."""
    from mlops_kit.notebook.runner import notebooks_dir, resolve, split_parameters

    if parameters:
        folder = notebooks_dir(project.settings)
        split_parameters(resolve([PIPELINE, LOAD_TEST], folder), parameters)


def data_fingerprint(project: Project, parameters: dict[str, Any] | None = None) -> str:
    """The fingerprint of the data a run with ``parameters`` trains on (``Dataset.fingerprint``)."""
    from mlops_kit.settings import TrainingSettings
    from mlops_kit.train import training

    chosen = {k: v for k, v in (parameters or {}).items() if k in TrainingSettings.model_fields}
    params = training.training_params(project.settings.training, **chosen)
    return training.load_data(params).fingerprint  # the project's own files, or a bundled set


def production_environment(project: Project) -> EnvironmentSettings | None:
    """The production environment, None when the project has none (nothing to promote to)."""
    found = [e for e in project.settings.environments if e.kind == "production"]
    return found[0] if found else None


def staged_fingerprint(project: Project) -> str | None:
    """The data fingerprint of the version staging serves (its lineage), None if none."""
    from mlops_kit.registry.client import Registry

    staging = project.settings.environment_of_kind("staging").name
    found = Registry(project).by_alias(staging)
    return found.lineage.get("data_fingerprint") if found is not None else None


def auto_promotion(project: Project) -> EnvironmentSettings | None:
    """The production environment when its policy lets a schedule promote, else None.

    Checked before anything is trained: the policy must verify approvers by SSH signature, the
    identity's key must exist and be listed in ``allowed_signers``, and the approver list
    (when there is one) must name the identity. ConfigError says which is missing.
    """
    from mlops_kit.gitops.repository import GitOpsRepo
    from mlops_kit.promote.signers import Signers

    settings = project.settings
    production = production_environment(project)
    if production is None or not production.approval.auto_promote:
        return None
    policy = production.approval
    identity = settings.schedule.identity
    if policy.identity != "ssh":
        raise ConfigError(
            f"{production.name}: auto_promote needs identity: ssh (the schedule signs its "
            f"approval), not {policy.identity}"
        )
    if policy.approvers and identity not in policy.approvers:
        raise ConfigError(
            f"{production.name}: auto_promote is on but the schedule identity {identity!r} is "
            f"not among its approvers ({', '.join(policy.approvers)})"
        )
    key = schedule_key(project)
    if not key.is_file():
        raise ConfigError(f"no schedule key at {key}: create it with `mlops-kit schedule key`")
    repo = GitOpsRepo.from_settings(settings)
    repo.ensure()
    if identity not in {s.name for s in Signers(repo).all()}:
        raise ConfigError(
            f"{identity!r} is not in allowed_signers: `mlops-kit signers add {identity} "
            f"{key}.pub --key YOUR_KEY` (a listed signer reviews it)"
        )
    return production


def retrain(
    project: Project,
    *,
    parameters: dict[str, Any] | None = None,
    since_fingerprint: str | None = None,
    schedule: str | None = None,
    output_dir: str | Path | None = None,
    progress_bar: bool = False,
) -> RetrainResult:
    """Run what one scheduled run does (see the module docstring); the outcome.

    ``parameters`` are notebook parameters as for ``mlops-kit run`` (``n_estimators`` …).
    With ``since_fingerprint``, unchanged data skips the run. A failing step raises its
    error (NotebookFailed naming notebook and cell, with the toolkit error's exit code).
    """
    from mlops_kit.notebook.runner import run_notebooks
    from mlops_kit.promote.promotion import Promotions
    from mlops_kit.registry.client import Registry
    from mlops_kit.settings import require_project

    settings = project.settings
    require_project(settings, "retraining")
    params = dict(parameters or {})
    fingerprint = data_fingerprint(project, params)
    if since_fingerprint and fingerprint == since_fingerprint:
        return RetrainResult(
            "skipped", fingerprint, detail=f"data unchanged ({fingerprint[:12]}): nothing to do"
        )
    production = auto_promotion(project)
    staging = settings.environment_of_kind("staging").name
    label = datetime.now(UTC).strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)
    out = Path(output_dir or settings.reports_dir / "schedules" / (schedule or "retrain") / label)
    load = {
        "environment": staging,
        "users": settings.schedule.load_users,
        "spawn_rate": float(settings.schedule.load_users),
        "duration_s": settings.schedule.load_duration_s,
        # Evidence for a person to weigh; a machine promoting on its own must meet the SLO.
        "fail_on_slo": production is not None,
    }
    runs = run_notebooks(
        [PIPELINE, LOAD_TEST],
        {**params, **load},
        output_dir=out,
        config=settings.project_file,
        progress_bar=progress_bar,
    )
    registry = Registry(project)
    staged = registry.by_alias(staging)
    if staged is None:
        raise ConfigError(f"notebook {PIPELINE} ran but the {staging} alias is not set")
    dest = production_environment(project)
    request_id = staged.lineage.get(f"promotion.{dest.name}", "") if dest is not None else ""
    promotions = Promotions(project)
    status = promotions.get(request_id).status if request_id else "none"
    detail = ""
    if production is not None and request_id:
        who = f"schedule {schedule}" if schedule else "mlops-kit retrain"
        decision = {
            "request_id": request_id,
            "approve": True,
            "approver": settings.schedule.identity,
            "comment": f"auto_promote: approved by {who}",
            "signing_key": str(schedule_key(project)),
        }
        runs += run_notebooks(
            [REVIEW],
            decision,
            output_dir=out,
            config=settings.project_file,
            progress_bar=progress_bar,
        )
        status = promotions.get(request_id).status
        detail = f"approved as {settings.schedule.identity}, signed"
    return RetrainResult(
        "retrained",
        fingerprint,
        version=staged.version,
        request=request_id,
        promotion=status,
        detail=detail,
        reports=[str(r.html) for r in runs],
    )

"""The same schedule on the scale-out engines: a Kubernetes CronJob, a GitHub Actions workflow.

Both run ``mlops-kit retrain`` with the schedule's parameters: the CronJob in the project
image (``schedule.image``), one run at a time (``concurrencyPolicy: Forbid``), the schedule's
retries as the Job's ``backoffLimit``; the workflow on a CI runner with ``on: schedule:`` and
the same retries with exponential backoff. Both take five-field cron only: a seconds field
stays on the embedded scheduler. The CronJob is committed to the GitOps repository under
``schedules/``, beside the Argo CD Application that syncs it (or ``kubectl apply`` it); Kubernetes
keeps no state between Jobs, so ``on_new_data`` compares with the data of the version staging
serves (``retrain --on-new-data``).
"""

from __future__ import annotations

import importlib.util
import json
import shlex
import subprocess
import tempfile
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_kit.errors import ConfigError, SchedulerError
from mlops_kit.gitops import manifests
from mlops_kit.schedule import cron

if TYPE_CHECKING:
    from mlops_kit.project import Project
    from mlops_kit.schedule.store import Schedule

SCHEDULES_DIR = "schedules"
KEY_DIR = "/var/run/mlops-kit"
KEY_PATH = f"{KEY_DIR}/schedule-key"
KEY_SECRET = "mlops-kit-schedule-key"  # noqa: S105 - the Secret's name, not a secret
"""The Secret holding the schedule identity's private key (key ``schedule-key``), mounted
read-only where auto-promoting runs sign with it."""
MANAGED_BY = {"app.kubernetes.io/managed-by": "mlops-kit"}


def retrain_args(schedule: Schedule) -> list[str]:
    """``mlops-kit retrain`` for one run of ``schedule`` where no scheduler keeps its state."""
    args = ["mlops-kit", "retrain", "--quiet", "--schedule", schedule.name]
    if schedule.on_new_data:
        args.append("--on-new-data")
    return args + schedule.parameter_args()


def cronjob_path(schedule: Schedule) -> str:
    return f"{SCHEDULES_DIR}/{schedule.name}.yaml"


def render_cronjob(project: Project, schedule: Schedule) -> dict[str, Any]:
    """The batch/v1 CronJob of ``schedule``, in the staging environment's namespace."""
    from mlops_kit.schedule.retrain import production_environment
    from mlops_kit.targets.kubernetes.endpoints import namespace_for

    settings = project.settings
    staging = settings.environment_of_kind("staging")
    labels = {**MANAGED_BY, "mlops-kit.io/schedule": schedule.name}
    timeout = int(settings.schedule.run_timeout_s)
    spec: dict[str, Any] = {
        "schedule": cron.five_fields(schedule.cron),
        "timeZone": "Etc/UTC",
        "concurrencyPolicy": "Forbid",
        "suspend": schedule.paused,
        "successfulJobsHistoryLimit": 3,
        "failedJobsHistoryLimit": 3,
    }
    if settings.schedule.missed == "skip":
        # Kubernetes starts a missed Job only within this deadline; without one it runs
        # once for missed fire times, as ``run_once`` does.
        spec["startingDeadlineSeconds"] = max(10, int(settings.schedule.misfire_grace_s))
    container: dict[str, Any] = {
        "name": "retrain",
        "image": settings.schedule.image,
        "command": retrain_args(schedule),
        "env": [
            {"name": "MLOPS_KIT_ACTOR", "value": schedule.created_by},
            {"name": "MLOPS_KIT_SCHEDULE__IDENTITY", "value": settings.schedule.identity},
        ],
    }
    pod: dict[str, Any] = {"restartPolicy": "Never", "containers": [container]}
    production = production_environment(project)
    if production is not None and production.approval.auto_promote:
        # The schedule signs its approval with its own key, from a Secret (never in git).
        container["env"].append({"name": "MLOPS_KIT_SCHEDULE__SIGNING_KEY", "value": KEY_PATH})
        container["volumeMounts"] = [
            {"name": "schedule-key", "mountPath": KEY_DIR, "readOnly": True}
        ]
        pod["volumes"] = [
            {"name": "schedule-key",
             "secret": {"secretName": KEY_SECRET, "defaultMode": 0o400}}
        ]  # fmt: skip
    spec["jobTemplate"] = {
        "metadata": {"labels": labels},
        "spec": {
            "backoffLimit": schedule.retries,
            "activeDeadlineSeconds": timeout * (schedule.retries + 1),
            "template": {"metadata": {"labels": labels}, "spec": pod},
        },
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {
            "name": f"retrain-{schedule.name}",
            "namespace": namespace_for(settings, staging),
            "labels": labels,
        },
        "spec": spec,
    }


def commit_cronjob(
    project: Project, schedule: Schedule, *, actor: str | None = None, commit: bool = True
) -> tuple[str, str | None]:
    """The CronJob's YAML and, with ``commit``, the GitOps commit adding it (None: unchanged),
    with the Argo CD Application that keeps ``schedules/`` in the cluster
    (``argocd/schedules.yaml``; apply it once, as notebook 01 applies the environments')."""
    from mlops_kit.gitops.argocd import application_path, render_schedules_application
    from mlops_kit.gitops.deploy import current_actor
    from mlops_kit.gitops.repository import GitOpsRepo

    text = manifests.dump(render_cronjob(project, schedule))
    if not commit:
        return text, None
    options = project.settings.kubernetes
    app = render_schedules_application(
        project.settings, SCHEDULES_DIR, argocd_namespace=options.argocd_namespace
    )
    repo = GitOpsRepo.from_settings(project.settings)
    repo.ensure()
    sha = repo.commit_files(
        repo.branch,
        {cronjob_path(schedule): text, application_path("schedules"): manifests.dump(app)},
        actor=actor or current_actor(),
        message=f"Schedule retrain {schedule.name}: {schedule.cron}",
        trailers={"Schedule": schedule.name},
    )
    return text, sha


def render_workflow(
    project: Project, schedule: Schedule, *, python: str = "3.12", toolkit_spec: str = "mlops-kit"
) -> dict[str, str]:
    """The GitHub Actions workflow of ``schedule``: path in the repository → content."""
    from mlops_kit.ci import OUTPUT_DIR, Template, safe, toolkit_requirement

    settings = project.settings
    config = settings.project_file.name if settings.project_file else "mlops.yaml"
    command = ["mlops-kit", "--config", config, *retrain_args(schedule)[1:]]
    values = {
        "name": schedule.name,
        "cron": cron.five_fields(schedule.cron),
        "retries": str(schedule.retries),
        "backoff": str(max(1, int(settings.schedule.backoff_s))),
        "timeout_minutes": str(
            int(settings.schedule.run_timeout_s * (schedule.retries + 1) / 60) + 10
        ),
        "python": python,
        "requirement": shlex.quote(toolkit_requirement(toolkit_spec, ["load"])),
        "command": safe("command", shlex.join(command)),
        "actor": safe("actor", schedule.created_by or "scheduler"),
        "output_dir": OUTPUT_DIR,
    }
    source = resources.files("mlops_kit") / "templates" / "schedule" / "github-schedule.yml"
    text = Template(source.read_text(encoding="utf-8")).substitute(values)
    return {f".github/workflows/mlops-schedule-{schedule.name}.yml": text}


def write_workflow(
    project: Project, schedule: Schedule, repo_dir: Path, *, force: bool = False
) -> list[Path]:
    """Write the workflow into the model repository at ``repo_dir``; the paths written."""
    from mlops_kit.ci import write_files

    return write_files(repo_dir, render_workflow(project, schedule), force=force)


KFP_INSTALL = "python -m venv ENV && ENV/bin/pip install 'kfp>=2.9,<3'"


def kfp_spec(project: Project, schedule: Schedule) -> dict[str, Any]:
    """The steps of one run of ``schedule`` for :mod:`mlops_kit.schedule.kfp_pipeline`."""
    from mlops_kit.schedule.retrain import production_environment

    settings = project.settings
    staging = settings.environment_of_kind("staging").name
    production = production_environment(project)
    auto = production is not None and production.approval.auto_promote
    run = ["mlops-kit", "run", "--quiet"]
    load = [
        f"environment={staging}",
        f"users={settings.schedule.load_users}",
        f"duration_s={settings.schedule.load_duration_s}",
        f"fail_on_slo={str(auto).lower()}",
    ]
    steps: list[dict[str, Any]] = [
        {"name": "train-gate-stage", "command": [*run, *schedule.parameter_args(), "02"]},
        {
            "name": "load-test-staging",
            "command": [*run, *(a for p in load for a in ("-p", p)), "04"],
        },
    ]
    if auto:
        # The schedule's key comes from a Secret mounted at this path ($MLOPS_KIT_SIGNING_KEY).
        approve = [
            "approve=true",
            f"approver={settings.schedule.identity}",
            f"comment=auto_promote: approved by schedule {schedule.name}",
        ]
        steps.append(
            {
                "name": "auto-promote",
                "command": [*run, *(a for p in approve for a in ("-p", p)), "03"],
                "env": {"MLOPS_KIT_SIGNING_KEY": KEY_PATH},
            }
        )
    for step in steps:
        step.setdefault("env", {})["MLOPS_KIT_ACTOR"] = schedule.created_by or "scheduler"
    return {
        "name": f"{settings.project}-retrain-{schedule.name}",
        "description": f"mlops-kit schedule {schedule.name} ({schedule.cron}): retrain, gate, "
        "stage, smoke, load-test, request the promotion",
        "image": settings.schedule.image,
        "retries": schedule.retries,
        "backoff_s": settings.schedule.backoff_s,
        "steps": steps,
    }


def kfp_python(project: Project) -> Path | None:
    """The interpreter to compile with; None: this one has kfp. ConfigError: none has."""
    configured = project.settings.schedule.kfp_python
    if configured is not None:
        python = Path(configured).expanduser()
        if not python.exists():
            raise ConfigError(
                f"schedule.kfp_python {python} does not exist; make it: {KFP_INSTALL}"
            )
        return python
    if importlib.util.find_spec("kfp") is not None:
        return None
    python = project.state_dir / "envs" / "kfp" / "bin" / "python"
    if python.exists():
        return python
    raise ConfigError(
        "compiling for Kubeflow Pipelines needs kfp, which pins kubernetes<31 and so lives in "
        f"an environment of its own: {KFP_INSTALL}, then set schedule.kfp_python: "
        f"ENV/bin/python (or make it at {python.parent.parent})"
    )


def compile_kfp(project: Project, schedule: Schedule, output: Path) -> Path:
    """Compile one run of ``schedule`` for Kubeflow Pipelines v2 into ``output`` (IR YAML)."""
    from mlops_kit.schedule import kfp_pipeline

    spec = kfp_spec(project, schedule)
    output = output.absolute()
    output.parent.mkdir(parents=True, exist_ok=True)
    python = kfp_python(project)
    if python is None:
        kfp_pipeline.compile_spec(spec, str(output))
        return output
    with tempfile.TemporaryDirectory(prefix="mlops-kit-kfp-") as tmp:
        spec_file = Path(tmp, "spec.json")
        spec_file.write_text(json.dumps(spec))
        try:
            done = subprocess.run(
                [str(python), kfp_pipeline.__file__, str(spec_file), str(output)],
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
                cwd=tmp,
            )
        except subprocess.TimeoutExpired:
            raise SchedulerError(f"compiling with {python} took over 300 s") from None
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise SchedulerError(f"kfp could not compile the pipeline ({python}): {tail[0]}")
    return output

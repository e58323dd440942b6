"""Bring up and check the environments of a project, and tear them down (notebook 01).

Every target needs the state directory and the registry; on top of that each target sets up
what its environments need through its own :meth:`DeploymentTarget.setup` hook (Kubernetes:
cluster, Seldon CRDs, namespaces, Argo CD Applications), and adds its own columns to the
environments table through :meth:`DeploymentTarget.describe`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlops_kit import display
from mlops_kit.errors import ConfigError, ParameterError
from mlops_kit.registry.database import redact
from mlops_kit.settings import require_project
from mlops_kit.targets.base import Check, SetupReport

if TYPE_CHECKING:
    from mlops_kit.project import Project
    from mlops_kit.settings import EnvironmentSettings, TrainingSettings
    from mlops_kit.train.training import Dataset, TrainingResult

TARGETS = ("local", "kubernetes", "sagemaker")


def check_target(name: str) -> str:
    """``name`` if it is a known target; ParameterError listing the known ones otherwise."""
    from mlops_kit import targets

    known = sorted(set(TARGETS) | set(targets.names()))
    if name not in known:
        raise ParameterError("target", f"{name!r} is not one of {', '.join(known)}")
    return name


def load_project(
    config: str | os.PathLike[str] | None = None, target: str | None = None, **overrides: Any
) -> Project:
    """Load the project; with ``target``, every environment is deployed through that target.

    ``target=None`` keeps what the project file and ``MLOPS_KIT_ENVIRONMENTS`` say: this is
    how a notebook's ``target`` parameter overrides the configuration for one run.
    """
    from mlops_kit.project import Project

    project = Project.load(config, **overrides)
    if target is None:
        return project
    check_target(target)
    settings = project.settings
    environments = [env.model_copy(update={"target": target}) for env in settings.environments]
    return Project(settings.model_copy(update={"environments": environments}))


def setup(project: Project, target: str | None = None, **options: Any) -> SetupReport:
    """Create what the environments need and check each part; idempotent.

    ``target`` sets every environment up for that target; None sets each up for its own
    configured target. ``options`` go to the targets' set-up hooks (Kubernetes:
    ``apply_argocd`` also applies the Argo CD Applications, ``cluster`` replaces the
    connection the settings describe); options left at their defaults (False, None) are
    not passed, and a target that does not know an option refuses it.
    """
    from mlops_kit import targets

    groups = _by_target(project, target)
    require_project(project.settings, "setting up the environments")
    report = SetupReport(target=target or ", ".join(groups))
    report.checks.append(Check("state directory", True, str(project.ensure_state_dir())))
    report.checks.append(_check_registry(project))
    given = {key: value for key, value in options.items() if value not in (None, False)}
    for name, mine in groups.items():
        targets.get(name).setup(project, mine, report, **given)
    envs = project.settings.environments
    report.environments = [_environment_row(project, env, target or env.target) for env in envs]
    return report


@dataclass
class TeardownReport(display.Rich):
    """What :func:`teardown` removed, per target; or that it was not asked to."""

    confirmed: bool
    removed: dict[str, list[str]] = field(default_factory=dict)

    def summary(self) -> str:
        """One line: skipped, or how many resources went."""
        if not self.confirmed:
            return "teardown skipped: set teardown = True to remove what the toolkit created"
        count = sum(len(names) for names in self.removed.values())
        where = ", ".join(f"{t}: {len(n)}" for t, n in self.removed.items())
        return f"removed {count} resource(s) ({where})"

    def _repr_html_(self) -> str:
        rows = [
            {"target": t, "removed": name} for t, names in self.removed.items() for name in names
        ]
        shown = display.verdict(True if self.confirmed else None, self.summary(), "teardown")
        return shown + (display.table(rows) if rows else "")

    def _figure_(self) -> display.Figure:
        return display.Figure("teardown", self.summary(), True if self.confirmed else None)


def teardown(
    project: Project, target: str | None = None, *, confirm: bool = False
) -> TeardownReport:
    """Remove what the toolkit runs for every environment (servers, endpoints); idempotent.

    The seed pipelines' clean-up stage, in notebook 01's last section and ``mlops-kit down``.
    Nothing happens unless ``confirm`` is true. ``target`` as in :func:`setup`. The GitOps
    record is kept: a later ``sync`` brings each environment back.
    """
    from mlops_kit import targets

    report = TeardownReport(confirmed=confirm)
    if not confirm:
        return report
    for name, mine in _by_target(project, target).items():
        report.removed[name] = targets.get(name).teardown(project, mine)
    return report


def _by_target(project: Project, target: str | None) -> dict[str, list[EnvironmentSettings]]:
    """The environments per target name, sorted by name: all on ``target`` when given (checked),
    else each on its configured one."""
    if target is not None:
        check_target(target)
    groups: dict[str, list[EnvironmentSettings]] = {}
    for env in project.settings.environments:
        groups.setdefault(target or env.target, []).append(env)
    return dict(sorted(groups.items()))


def train(project: Project, data: Dataset, params: TrainingSettings) -> TrainingResult:
    """Train and register a version where the project's first environment is served.

    A SageMaker environment trains in a SageMaker training job and registers the job's model
    (:func:`~mlops_kit.targets.sagemaker.training_jobs.train_on_sagemaker`); the other targets
    train in this process (:func:`~mlops_kit.train.training.train_and_register`).
    """
    if project.settings.environments[0].target == "sagemaker":
        from mlops_kit.targets.sagemaker.training_jobs import train_on_sagemaker

        if not params.builtin or data.task != "classification":
            raise ConfigError(
                "a SageMaker training job trains the built-in classifiers only; train a "
                f"{data.task} model with {params.entrypoint} on another target"
            )
        return train_on_sagemaker(project, data, params)
    from mlops_kit.train.training import train_and_register

    return train_and_register(project, data, params)


def _environment_row(project: Project, env: EnvironmentSettings, target: str) -> dict[str, Any]:
    from mlops_kit import targets

    row: dict[str, Any] = {"environment": env.name, "kind": env.kind, "target": target}
    row.update(targets.get(target).describe(project.settings, env))
    row["approvers"] = ", ".join(env.approval.approvers) or "(anyone)"
    row["four_eyes"] = env.approval.four_eyes
    return row


def _check_registry(project: Project) -> Check:
    try:
        # Creating the registry's tables logs INFO lines that are no news in a cell's output.
        with display.quiet():
            experiment = project.experiment_id()
            project.client.search_registered_models(max_results=1)
    except Exception as exc:
        return Check("model registry", False, f"{redact(project.tracking_uri)}: {exc}")
    return Check(
        "model registry", True, f"{redact(project.tracking_uri)} (experiment {experiment})"
    )

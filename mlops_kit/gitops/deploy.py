"""Deploy a registered version to an environment: GitOps commit, sync, smoke test, record."""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_kit import artifacts, display
from mlops_kit.deployment import DeploymentSpec
from mlops_kit.errors import PromotionRequired
from mlops_kit.gitops.repository import GitOpsRepo
from mlops_kit.gitops.sync import SyncReport, sync
from mlops_kit.registry.client import Registry
from mlops_kit.settings import require_project
from mlops_kit.train.training import TAG_PREFIX

if TYPE_CHECKING:
    from mlops_kit.project import Project
    from mlops_kit.verify.smoke import SmokeResult


def current_actor() -> str:
    """Who is acting: ``$MLOPS_KIT_ACTOR``, the CI's user, or the login name."""
    for var in ("MLOPS_KIT_ACTOR", "GITHUB_ACTOR", "GITLAB_USER_LOGIN", "BUILD_USER_ID"):
        if os.environ.get(var):
            return os.environ[var]
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


@dataclass(frozen=True)
class DeployResult(display.Rich):
    """What a deploy committed and what the environment serves afterwards."""

    environment: str
    version: str
    commit: str | None
    sync: SyncReport
    endpoint: str

    def summary(self) -> dict[str, Any]:
        """Plain data for display."""
        return {
            "environment": self.environment,
            "version": self.version,
            "commit": (self.commit or "unchanged")[:10],
            "sync": self.sync.summary(),
            "endpoint": self.endpoint,
        }

    def _repr_html_(self) -> str:
        rows = {
            "GitOps commit": (self.commit or "unchanged (already in the repository)")[:10],
            "sync": self.sync.summary(),
            "endpoint": display.Html(display.link(self.endpoint)),
        }
        return display.section(
            f"{self.environment} serves v{self.version}", display.fields(rows), passed=True,
            status="deployed",
        )  # fmt: skip

    def _figure_(self) -> display.Figure:
        return display.Figure(
            f"deploy ({self.environment})", f"serves v{self.version} at {self.endpoint}", True
        )


def spec_for(project: Project, environment: str, version: str | int) -> DeploymentSpec:
    """The portable deployment of a registered version into ``environment``.

    A model in a remote artifact store keeps its ``s3://`` location, which clusters read with
    the ``kubernetes.storage_secret`` credentials and the local target downloads; any other is
    named by its local path.
    """
    registry = Registry(project)
    info = registry.get(version)
    stored = registry.client.get_model_version_download_uri(project.model_name, info.version)
    remote = artifacts.is_remote(stored)
    return DeploymentSpec(
        environment=environment,
        model_name=project.model_name,
        version=info.version,
        model_uri=stored if remote else str(registry.local_path(info.version)),
        storage_secret=project.settings.kubernetes.storage_secret if remote else None,
        flavour=project.settings.serving.flavour,
        custom_class=project.settings.serving.custom_class,
        run_id=info.run_id,
    )


def deploy(
    project: Project,
    environment: str,
    version: str | int,
    *,
    actor: str | None = None,
    message: str | None = None,
    trailers: dict[str, str] | None = None,
) -> DeployResult:
    """Commit the version's deployment to the environment's GitOps path, then sync it.

    Blocks until the environment serves the version (or raises). Committing a deployment
    that is already in the repo makes no commit. Without a project file it refuses
    (ConfigError): see :func:`mlops_kit.settings.require_project`. A production-kind
    environment is refused (PromotionRequired): it changes only through an approved
    promotion request.
    """
    from mlops_kit import targets

    require_project(project.settings, f"deploying to {environment}")
    if project.settings.environment(environment).kind == "production":
        raise PromotionRequired(environment, "`deploy`", version)
    spec = spec_for(project, environment, version)
    repo = GitOpsRepo.from_settings(project.settings)
    repo.ensure()
    commit = repo.write(
        spec,
        actor=actor or current_actor(),
        message=message or f"Deploy {spec.model_name} v{spec.version} to {environment}",
        trailers=trailers,
    )
    target = targets.for_environment(project.settings, environment)
    report = sync(project, environment, repo=repo, target=target)
    return DeployResult(environment, spec.version, commit, report, target.endpoint(spec.model_name))


def examples_cache(project: Project) -> Path:
    """Where smoke tests keep each model's examples and predictions (see
    :func:`~mlops_kit.verify.smoke.examples_from_model`)."""
    return project.state_dir / "cache" / "smoke-examples"


def smoke(project: Project, environment: str, version: str | int | None = None) -> SmokeResult:
    """Smoke-test what ``environment`` serves against the registered model's own predictions.

    The result is recorded as tags on the version; a failure raises SmokeTestFailed.
    """
    from mlops_kit import targets
    from mlops_kit.verify.smoke import examples_from_model, smoke_test

    registry = Registry(project)
    target = targets.for_environment(project.settings, environment)
    status = target.status(project.model_name)
    expected_version = str(version) if version is not None else (status.version if status else None)
    if expected_version is None:
        from mlops_kit.errors import SmokeTestFailed

        raise SmokeTestFailed(environment, [f"{project.model_name} is not deployed"])
    path = str(registry.local_path(expected_version))
    examples, expected = examples_from_model(path, cache=examples_cache(project))
    result = smoke_test(
        target.endpoint(project.model_name),
        project.model_name,
        examples,
        expected,
        expected_version=expected_version,
        raise_on_failure=False,
    )
    registry.tag(
        expected_version,
        {
            f"{TAG_PREFIX}smoke.{environment}": "passed" if result.passed else "failed",
            f"{TAG_PREFIX}smoke.{environment}.detail": "; ".join(result.failures) or "ok",
        },
    )
    if not result.passed:
        from mlops_kit.errors import SmokeTestFailed

        raise SmokeTestFailed(result.endpoint, result.failures)
    return result

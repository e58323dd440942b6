"""Bring up and check the environments of a target (notebook 01)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlops_kit.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

    from mlops_kit.project import Project

TARGETS = ("local", "kubernetes", "sagemaker")


@dataclass
class Check:
    """One thing set-up verified."""

    name: str
    ok: bool
    detail: str


@dataclass
class SetupReport:
    """What set-up created and verified."""

    target: str
    checks: list[Check] = field(default_factory=list)
    environments: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every check passed."""
        return all(c.ok for c in self.checks)

    def table(self) -> pd.DataFrame:
        """The checks as a table."""
        import pandas as pd

        return pd.DataFrame([vars(c) for c in self.checks])

    def environments_table(self) -> pd.DataFrame:
        """The configured environments as a table."""
        import pandas as pd

        return pd.DataFrame(self.environments)

    def raise_for_failure(self) -> None:
        """Raise ConfigError listing the failed checks."""
        failed = [f"{c.name}: {c.detail}" for c in self.checks if not c.ok]
        if failed:
            raise ConfigError("set-up failed: " + "; ".join(failed))


def setup(project: Project, target: str = "local") -> SetupReport:
    """Create what the embedded default needs and check each part; idempotent."""
    if target not in TARGETS:
        from mlops_kit.errors import ParameterError

        raise ParameterError("target", f"{target!r} is not one of {', '.join(TARGETS)}")
    report = SetupReport(target=target)
    report.checks.append(Check("state directory", True, str(project.ensure_state_dir())))
    report.checks.append(_check_registry(project))
    report.environments = [
        {
            "environment": env.name,
            "kind": env.kind,
            "target": env.target,
            "approvers": ", ".join(env.approval.approvers) or "(anyone)",
            "four_eyes": env.approval.four_eyes,
        }
        for env in project.settings.environments
    ]
    return report


def _check_registry(project: Project) -> Check:
    try:
        experiment = project.experiment_id()
        project.client.search_registered_models(max_results=1)
    except Exception as exc:
        return Check("model registry", False, f"{project.tracking_uri}: {exc}")
    return Check("model registry", True, f"{project.tracking_uri} (experiment {experiment})")

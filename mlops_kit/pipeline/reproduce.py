"""Reproduce a registered version from its snapshot and compare the metrics.

The snapshot's input files are restored into a scratch directory (digests checked), the
pipeline re-runs on them with the recorded training settings — every step computed afresh,
nothing from the cache, nothing registered — and the held-out metrics are compared with the
ones the registry holds for the version. The recorded code commit is compared with the working
tree's: a different commit is reported (the code may have changed), not refused.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from mlops_kit import display
from mlops_kit.errors import ReproductionMismatch
from mlops_kit.pipeline import snapshots
from mlops_kit.pipeline.steps import TARGET
from mlops_kit.pipeline.store import ContentStore

if TYPE_CHECKING:
    from mlops_kit.project import Project

TOLERANCE = 1e-9
"""Largest difference (absolute, or relative to the registered value) that still counts as
equal: the same data, code and seeds give the same figures."""


@dataclass(frozen=True)
class Reproduction(display.Rich):
    """The registered metrics beside the reproduced ones."""

    model: str
    version: str
    rows: list[dict[str, Any]]
    tolerance: float
    warnings: list[str] = field(default_factory=list)

    @property
    def mismatched(self) -> list[str]:
        """Metrics that differ beyond the tolerance."""
        return [row["metric"] for row in self.rows if not row["equal"]]

    @property
    def passed(self) -> bool:
        """Whether every registered metric was reproduced."""
        return not self.mismatched

    def raise_for_mismatch(self) -> None:
        """ReproductionMismatch naming the metrics that differ."""
        if not self.passed:
            raise ReproductionMismatch(self.model, self.version, self.mismatched)

    def _repr_html_(self) -> str:
        return display.section(
            f"Reproduce {self.model} v{self.version}",
            *(display.verdict(None, w, "WARNING") for w in self.warnings),
            display.table(self.rows),
            passed=self.passed,
            status="reproduced" if self.passed else "differs",
        )


def reproduce(
    project: Project, version: str | int, *, tolerance: float = TOLERANCE, progress: bool = True
) -> Reproduction:
    """Re-run version ``version``'s pipeline from its snapshot; the comparison of metrics."""
    from mlops_kit.pipeline import train
    from mlops_kit.settings_training import TrainingSettings
    from mlops_kit.train.training import git_commit

    _, snapshot = snapshots.for_version(project, version)
    warnings = []
    here = git_commit(project.settings.project_dir or Path.cwd())
    if here != snapshot.commit:
        warnings.append(
            f"v{snapshot.version} was trained at commit {snapshot.commit[:12]}, the working tree "
            f"is at {here[:12]}: the code may differ"
        )
    training = TrainingSettings.model_validate(snapshot.training)
    registered = project.client.get_run(snapshot.run_id).data.metrics
    with tempfile.TemporaryDirectory(prefix="mlops-kit-reproduce-") as tmp:
        written = snapshots.write_inputs(
            ContentStore.for_project(project), snapshot, Path(tmp), force=True
        )
        training = training.model_copy(update={"data": _restored(training, written, Path(tmp))})
        run = train.run(project, training, use_cache=False, progress=progress, until="evaluate")
        metrics = run.output("metrics")
    rows = [_compare(name, registered[name], metrics.get(name), tolerance)
            for name in sorted(snapshot.metrics) if name in registered]  # fmt: skip
    return Reproduction(project.model_name, str(snapshot.version), rows, tolerance, warnings)


def _restored(training: Any, written: list[Path], directory: Path) -> Any:
    """The data settings reading the restored files instead of the original ones."""
    from mlops_kit.settings_training import DataSettings
    from mlops_kit.train.data import SUFFIXES

    if training.data is None:  # a bundled set, snapshotted as one CSV with a target column
        return DataSettings(path=str(written[0]), target=TARGET, format="csv")
    # A path with a data suffix named one file (a key, on S3); otherwise a directory.
    single = Path(urlparse(training.data.path).path).suffix.lower() in SUFFIXES
    return training.data.model_copy(update={"path": str(written[0] if single else directory)})


def _compare(name: str, registered: float, reproduced: float | None, tol: float) -> dict[str, Any]:
    equal = reproduced is not None and math.isclose(
        registered, reproduced, rel_tol=tol, abs_tol=tol
    )
    return {
        "metric": name,
        "registered": registered,
        "reproduced": reproduced,
        "difference": None if reproduced is None else reproduced - registered,
        "equal": equal,
    }

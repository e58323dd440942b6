"""The model registry through aliases (``staging``, ``production``), never the deprecated stages."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from mlops_kit import display
from mlops_kit.errors import ModelVersionNotFound, RegistryError
from mlops_kit.train.training import TAG_PREFIX

if TYPE_CHECKING:
    import pandas as pd
    from mlflow import MlflowClient

    from mlops_kit.project import Project

ALIASES = ("staging", "production")


@dataclass(frozen=True)
class ModelVersionInfo(display.Rich):
    """One registered model version with its aliases and tags."""

    name: str
    version: str
    run_id: str | None
    source: str
    aliases: tuple[str, ...]
    tags: dict[str, str]
    created: datetime

    @property
    def lineage(self) -> dict[str, str]:
        """The toolkit's tags without their ``mlops.`` prefix."""
        return {
            k.removeprefix(TAG_PREFIX): v for k, v in self.tags.items() if k.startswith(TAG_PREFIX)
        }

    def as_row(self) -> dict[str, Any]:
        """A flat mapping for tables."""
        lineage = self.lineage
        return {
            "version": self.version,
            "aliases": ", ".join(self.aliases),
            "created": self.created.strftime("%Y-%m-%d %H:%M:%S"),
            "gate": lineage.get("gate.verdict", ""),
            "git_commit": lineage.get("git_commit", "")[:12],
            "data": lineage.get("data_fingerprint", "")[:12],
            "pipeline_run": lineage.get("pipeline_run_id", ""),
        }

    def _repr_html_(self) -> str:
        about = {
            "aliases": ", ".join(self.aliases) or "none",
            "created": self.created.strftime("%Y-%m-%d %H:%M:%S %Z").strip(),
            "run": self.run_id,
        }
        return display.section(
            f"{self.name} v{self.version}",
            display.fields(about),
            display.fields(self.lineage, title="tags (mlops.*)") if self.lineage else "",
        )


@dataclass
class Registry:
    """Read and move aliases, tags and versions of the project's registered model."""

    project: Project
    model_name: str = field(default="")

    def __post_init__(self) -> None:
        self.model_name = self.model_name or self.project.model_name

    @property
    def client(self) -> MlflowClient:
        """The project's MLflow client."""
        return self.project.client

    def get(self, version: str | int) -> ModelVersionInfo:
        """One version by number; ModelVersionNotFound if there is none."""
        from mlflow.exceptions import MlflowException

        try:
            mv = self.client.get_model_version(self.model_name, str(version))
        except MlflowException:
            raise ModelVersionNotFound(self.model_name, str(version)) from None
        return _info(mv)

    def by_alias(self, alias: str) -> ModelVersionInfo | None:
        """The version an alias points at, or None when the alias is unset."""
        from mlflow.exceptions import MlflowException

        try:
            mv = self.client.get_model_version_by_alias(self.model_name, alias)
        except MlflowException:
            return None
        return _info(mv)

    def champion(
        self, aliases: tuple[str, ...] = ("production", "staging")
    ) -> ModelVersionInfo | None:
        """The current champion: the version under the first alias that is set."""
        for alias in aliases:
            found = self.by_alias(alias)
            if found is not None:
                return found
        return None

    def set_alias(self, alias: str, version: str | int) -> None:
        """Point ``alias`` at ``version`` (moving it from wherever it was)."""
        self.get(version)
        try:
            self.client.set_registered_model_alias(self.model_name, alias, str(version))
        except Exception as exc:
            raise RegistryError(
                f"could not set alias {alias!r} to version {version}: {exc}"
            ) from exc

    def delete_alias(self, alias: str) -> None:
        """Remove ``alias``; removing an unset alias does nothing."""
        if self.by_alias(alias) is not None:
            self.client.delete_registered_model_alias(self.model_name, alias)

    def tag(self, version: str | int, tags: dict[str, Any]) -> None:
        """Set tags on a version; values are stored as strings."""
        for key, value in tags.items():
            self.client.set_model_version_tag(self.model_name, str(version), key, str(value))

    def versions(self) -> list[ModelVersionInfo]:
        """Every version, newest first, with aliases and lineage."""
        from mlflow.exceptions import MlflowException

        try:
            found = self.client.search_model_versions(
                f"name = '{self.model_name}'", order_by=["version_number DESC"]
            )
        except MlflowException:
            return []
        # search results do not always carry aliases; fetch each version to get them.
        infos = [self.get(mv.version) for mv in found]
        return sorted(infos, key=lambda i: int(i.version), reverse=True)

    def table(self) -> pd.DataFrame:
        """Every version as a table: aliases, gate verdict, lineage."""
        import pandas as pd

        return pd.DataFrame([v.as_row() for v in self.versions()])

    def local_path(self, version: str | int) -> Path:
        """A local directory holding the version's MLflow model (downloaded if remote)."""
        uri = self.client.get_model_version_download_uri(self.model_name, str(version))
        parsed = urlparse(uri)
        if parsed.scheme in ("", "file"):
            path = Path(unquote(parsed.path))
            if path.is_dir():
                return path
        import mlflow

        return Path(mlflow.artifacts.download_artifacts(f"models:/{self.model_name}/{version}"))

    def load_model(self, version: str | int) -> Any:
        """The version as an MLflow pyfunc model."""
        import mlflow.pyfunc

        return mlflow.pyfunc.load_model(str(self.local_path(version)))


def _info(mv: Any) -> ModelVersionInfo:
    return ModelVersionInfo(
        name=mv.name,
        version=str(mv.version),
        run_id=mv.run_id,
        source=mv.source,
        aliases=tuple(sorted(getattr(mv, "aliases", []) or [])),
        tags=dict(mv.tags or {}),
        created=datetime.fromtimestamp((mv.creation_timestamp or 0) / 1000, tz=UTC),
    )

"""A project: its settings plus the state directory and registry they point at."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from mlops_kit import artifacts, display
from mlops_kit.errors import RegistryError
from mlops_kit.registry.database import prepare, redact, sqlalchemy_uri
from mlops_kit.settings import Settings, load_settings

if TYPE_CHECKING:
    from mlflow import MlflowClient

logger = logging.getLogger(__name__)


@dataclass
class Project(display.Rich):
    """Settings (paths resolved against the project's root), and lazy handles on the registry."""

    settings: Settings

    @classmethod
    def load(cls, config: str | os.PathLike[str] | None = None, **overrides: Any) -> Project:
        """Load settings (file, ``MLOPS_KIT_*``, ``overrides``) and create the state directory."""
        project = cls(load_settings(config, **overrides))
        project.ensure_state_dir()
        return project

    @property
    def state_dir(self) -> Path:
        """Absolute state directory; everything the embedded default writes lives under it."""
        return self.settings.state_dir.resolve()

    @property
    def tracking_uri(self) -> str:
        """MLflow tracking and registry URI (SQLite in the state directory unless configured)."""
        if self.settings.registry_uri:
            return sqlalchemy_uri(self.settings.registry_uri)
        return f"sqlite:///{self.state_dir / 'mlflow.db'}"

    @property
    def artifact_uri(self) -> str:
        """Root URI of run and model artifacts: ``artifact_store``, else the state dir's
        ``artifacts/`` (see :mod:`mlops_kit.artifacts`)."""
        return artifacts.store_uri(self.settings.artifact_store, self.state_dir / "artifacts")

    @property
    def artifact_root(self) -> Path | None:
        """The local directory artifacts go to; None when the store is remote (``s3://``)."""
        return artifacts.local_dir(self.artifact_uri)

    @property
    def model_name(self) -> str:
        """Registered model name."""
        return self.settings.model_name

    def _repr_html_(self) -> str:
        settings = self.settings
        rows = {
            "project": settings.project,
            "model": settings.model_name,
            "state directory": self.state_dir,
            "registry": redact(self.tracking_uri),
            "reports": settings.reports_dir,
            "environments": ", ".join(
                f"{e.name} ({e.kind}, {e.target})" for e in settings.environments
            ),
        }
        return display.fields(rows)

    def _figure_(self) -> display.Figure:
        envs = ", ".join(e.name for e in self.settings.environments)
        return display.Figure("project", f"{self.settings.project}: {self.model_name} in {envs}")

    def ensure_state_dir(self) -> Path:
        """Create the state directory (idempotent) and return it."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        return self.state_dir

    @property
    def client(self) -> MlflowClient:
        """An MLflow client on this project's registry; also points the fluent API at it.

        The fluent API (``mlflow.start_run``) is process-global, so it is re-pointed on every
        use: two projects in one process each log to their own registry.
        """
        import mlflow

        artifacts.require_client(self.artifact_uri)
        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.tracking_uri)
        return self._client

    @cached_property
    def _client(self) -> MlflowClient:
        from mlflow import MlflowClient

        prepare(self.settings.registry_uri)  # PostgreSQL: driver, connection, schema once
        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)

    def experiment_id(self) -> str:
        """The project's MLflow experiment, created on first use with artifacts in the store.

        A configured ``artifact_store`` is the new experiment's artifact location whatever the
        registry; without one a database registry (SQLite, PostgreSQL) uses the state directory
        and a registry server its own default. An existing experiment keeps the location it was
        created with. Two processes creating it at once find the same one.
        """
        import mlflow
        from mlflow.exceptions import MlflowException

        client = self.client
        existing = client.get_experiment_by_name(self.settings.project)
        if existing is None:
            served = urlparse(self.tracking_uri).scheme in ("http", "https")
            configured = self.settings.artifact_store or not served
            location = self.artifact_uri if configured else None
            try:
                client.create_experiment(self.settings.project, artifact_location=location)
            except MlflowException as exc:
                if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                    raise  # else another process created it a moment ago
            existing = client.get_experiment_by_name(self.settings.project)
            if existing is None:
                raise RegistryError(f"could not create the experiment {self.settings.project!r}")
        elif self.settings.artifact_store and not existing.artifact_location.startswith(
            self.artifact_uri
        ):
            logger.warning(
                "experiment %s keeps its artifacts in %s, not in artifact_store %s",
                self.settings.project, existing.artifact_location, self.artifact_uri,
            )  # fmt: skip
        mlflow.set_experiment(experiment_id=existing.experiment_id)
        return str(existing.experiment_id)

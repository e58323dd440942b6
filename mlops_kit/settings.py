"""Project settings: one pydantic-settings model read from ``mlops.yaml`` and ``MLOPS_KIT_*``.

Precedence, highest first: keyword overrides, environment variables (``MLOPS_KIT_STATE_DIR``,
nested fields with ``__`` as in ``MLOPS_KIT_GATES__MIN_VALUE``), the project file, defaults.
A bad value stops loading with one message naming the field.

The project file is found the way git finds ``.git``: the one named (``--config``, then
``$MLOPS_KIT_CONFIG``), else the nearest ``mlops.yaml`` from the working directory upwards.
Its directory is the project's root: relative paths in the file, and the default paths
(``.mlops``, ``build/notebooks``), are relative to it, whatever the working directory.
"""

from __future__ import annotations

import contextvars
import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    YamlConfigSettingsSource,
)

from mlops_kit.artifacts import ArtifactStore
from mlops_kit.discovery import (
    PATH_OR_URL,
    PROJECT_FILE,
    Discovery,
    anchor_data,
    anchor_defaults,
    discover,
)
from mlops_kit.discovery import require_project as require_project  # re-exported
from mlops_kit.display import fields
from mlops_kit.errors import ConfigError
from mlops_kit.settings_base import Section as _Section
from mlops_kit.settings_loadtest import LoadTestSettings
from mlops_kit.settings_monitor import MonitorSettings
from mlops_kit.settings_pipeline import PipelineSettings
from mlops_kit.settings_rollout import RolloutSettings
from mlops_kit.settings_sagemaker import SageMakerSettings
from mlops_kit.settings_schedule import ScheduleSettings
from mlops_kit.settings_training import DATASETS as DATASETS  # re-exported
from mlops_kit.settings_training import MODEL_TYPES as MODEL_TYPES
from mlops_kit.settings_training import GateSettings as GateSettings
from mlops_kit.settings_training import TrainingSettings as TrainingSettings
from mlops_kit.settings_training import check_task

ENV_PREFIX = "MLOPS_KIT_"
DEFAULT_CONFIG = PROJECT_FILE

NAME_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
Name = Annotated[str, Field(pattern=NAME_PATTERN)]
"""A lowercase DNS-1123 label: valid as a Kubernetes name, a git path and a registry name."""

_config_path: contextvars.ContextVar[Path | None] = contextvars.ContextVar(
    "mlops_kit_config_path", default=None
)


class ApprovalPolicy(_Section):
    """Who may approve a promotion into an environment."""

    approvers: list[str] = Field(default_factory=list)
    """Names allowed to approve; empty means anyone (four-eyes still applies)."""
    four_eyes: bool = True
    """Refuse an approval by the person who requested the promotion."""
    min_approvals: int = Field(default=1, ge=1, le=10)
    """Distinct approvals needed before the promotion is merged."""
    identity: Literal["ssh", "ci", "none"] = "ssh"
    """How an approver's name is checked: ``ssh`` (the decision signed with their SSH key,
    verified against ``allowed_signers`` in the GitOps repository), ``ci`` (the CI platform's
    ``ci_identity_variable`` must name them), ``none`` (trusted: a sandbox only)."""
    ci_identity_variable: str = Field(default="GITHUB_ACTOR", pattern=r"^[A-Z_][A-Z0-9_]*$")
    """Environment variable the CI platform sets to the person who triggered the job
    (``GITHUB_ACTOR``, ``GITLAB_USER_LOGIN``, ``BUILD_USER_ID``), for ``identity: ci``."""
    auto_promote: bool = False
    """Let a scheduled run approve its own candidate as ``schedule.identity``: signed with the
    schedule's key, under every other rule here (``approvers``, ``min_approvals``, gates)."""


class EnvironmentSettings(_Section):
    """One deployment environment, e.g. staging or production."""

    name: Name
    """Directory name under ``environments/`` in the GitOps repo and the endpoint's name."""
    kind: Literal["staging", "production"]
    """Staging is deployed on every passing model; production only through an approved request."""
    target: str = "local"
    """Deployment target name: ``local`` (MLServer on loopback), ``kubernetes``, ``sagemaker``."""
    namespace: str | None = None
    """Kubernetes namespace (defaults to ``<project>-<name>``)."""
    approval: ApprovalPolicy = Field(default_factory=ApprovalPolicy)
    """Approval policy for promotions into this environment."""
    context: str | None = None
    """kubeconfig context of this environment's cluster; None: kubernetes.context."""
    promotes_from: Name | None = None
    """The environment this one takes versions from, which must be listed before it.

    None: the environment before it in the list (the first one takes versions from training).
    A version is promoted here only after that environment served it and its smoke test passed.
    """
    rollout: RolloutSettings = Field(default_factory=RolloutSettings)
    """How a promotion moves traffic to the new version: replace, canary, shadow, blue_green."""


class ServingSettings(_Section):
    """How the local target serves models."""

    host: str = "127.0.0.1"
    """Interface the local servers bind to; loopback unless you mean otherwise."""
    flavour: Literal["mlflow", "sklearn", "custom", "embedded"] = "mlflow"
    """Server flavour: prepackaged MLflow or scikit-learn runtime, custom or embedded server."""
    ready_timeout: float = Field(default=60.0, gt=0)
    """Seconds to wait for a server to become ready before the deploy fails."""
    max_batch_size: int = Field(default=64, ge=1)
    """Rows the local runtime predicts in one call at most when it batches concurrent requests.

    Requests are validated and decoded one by one; only valid ones are batched, and a batch
    that fails is predicted request by request. Batching assumes the model answers each row
    independently of the other rows in the call (scikit-learn estimators do); 1 turns it off.
    """
    max_batch_time: float = Field(default=0.002, ge=0, le=1)
    """Seconds a batch may wait for more requests, counted from its first one.

    Only waits while other requests are in flight: a lone request is predicted at once.
    """
    max_request_bytes: int = Field(default=16 * 2**20, ge=1024)
    """Largest request body a local MLServer accepts, in bytes (gzip bodies once decoded).

    A larger one is answered 413 before it is read; the connection stays usable.
    """
    max_header_bytes: int = Field(default=32 * 2**10, ge=1024)
    """Largest request line plus headers a local MLServer accepts, in bytes (431 beyond)."""
    read_timeout: float = Field(default=10.0, gt=0, le=3600)
    """Seconds a client has to send a whole request to a local MLServer, headers and body.

    Counted from the request's first byte (or from opening the connection); a client still
    sending then gets 408 and is disconnected, so stalled clients cannot hold connections.
    """
    seldon_python: Path | None = None
    """Interpreter of an environment with seldon-core, for the ``custom`` flavour.

    None: ``<state_dir>/envs/seldon/bin/python``, which ``mlops-kit seldon-env`` creates.
    seldon-core pins ``numpy<2``, so it never shares the toolkit's own environment.
    """
    custom_class: str | None = Field(
        default=None, pattern=r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$"
    )
    """``module:Class`` of the user's model class, for custom-flavour deployments that name none."""
    custom_code_dir: Path = Path(".")
    """Directory holding the custom class's module: the server's working directory and path."""


class KubernetesSettings(_Section):
    """How the Kubernetes target reaches the cluster and the endpoints."""

    kubeconfig: Path | None = None
    """kubeconfig file; None: $KUBECONFIG, else ~/.kube/config, else in-cluster."""
    context: str | None = None
    """kubeconfig context; None: the file's current context."""
    ingress_url: str | None = None
    """Base URL of the Istio / Ambassador gateway endpoints are reached through."""
    ingress_path: str | None = None
    """Endpoint path template ({namespace}, {name}, {model}); None: per manifest format."""
    argocd_namespace: Name = "argocd"
    """Namespace Argo CD and its Applications live in."""
    ready_timeout: float | None = Field(default=None, gt=0)
    """Seconds to wait for a rollout; None: serving.ready_timeout."""
    poll_interval: float = Field(default=1.0, gt=0, le=60)
    """Seconds between two looks at a deployment's status."""
    request_timeout: float = Field(default=30.0, gt=0)
    """Seconds any single API request may take."""
    storage_secret: Name | None = "mlops-kit-s3"  # noqa: S105 - a name, not a secret
    """Secret with the credentials Seldon reads ``s3://`` models with (docs/artifacts.md)."""


class GitOpsSettings(_Section):
    """Where the GitOps repository lives."""

    remote: Annotated[str | None, PATH_OR_URL] = None
    """A git URL or path (relative to the project file); None: a bare repository in the state
    directory."""
    branch: str = "main"
    """The branch the environments are read from."""
    manifest: Literal["seldon-v1", "seldon-v2"] = "seldon-v1"
    """Document committed per deployment: v1 ``SeldonDeployment`` or Seldon Core v2 ``Model``."""


class Settings(BaseSettings):
    """Everything a project configures. See the demo project's ``mlops.yaml``."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
        use_attribute_docstrings=True,
    )

    project: Name = "mlops-demo"
    """Project name, used for the MLflow experiment and Kubernetes namespaces."""
    model_name: Name = "wine-classifier"
    """Registered model name."""
    state_dir: Path = Path(".mlops")
    """Where the embedded default keeps everything it creates; delete it to reset."""
    reports_dir: Path = Path("build/notebooks")
    """Where executed notebooks and their HTML land; promotion requests cite the HTML reports."""
    registry_uri: str | None = None
    """MLflow registry URI, e.g. ``postgresql://user@host/db`` (docs/postgres.md); None: SQLite."""
    artifact_store: ArtifactStore = None
    """Where model artifacts live: a directory, ``file://`` or ``s3://bucket/prefix`` (AWS
    configuration and ``AWS_ENDPOINT_URL`` honoured); None: ``artifacts/`` in the state dir."""
    environments: list[EnvironmentSettings] = Field(
        default_factory=lambda: [
            EnvironmentSettings(name="staging", kind="staging"),
            EnvironmentSettings(name="production", kind="production"),
        ]
    )
    """Deployment environments, in promotion order."""
    gates: GateSettings = Field(default_factory=GateSettings)
    """Quality gate thresholds."""
    training: TrainingSettings = Field(default_factory=TrainingSettings)
    """Training defaults; notebook parameters override them."""
    serving: ServingSettings = Field(default_factory=ServingSettings)
    """Local serving options."""
    gitops: GitOpsSettings = Field(default_factory=GitOpsSettings)
    """GitOps repository location."""
    load_test: LoadTestSettings = Field(default_factory=LoadTestSettings)
    """Load-test bounds and service-level objectives."""
    monitor: MonitorSettings = Field(default_factory=MonitorSettings)
    """The metrics store: the local Prometheus (``mlops-kit monitor``) or a cluster's."""
    kubernetes: KubernetesSettings = Field(default_factory=KubernetesSettings)
    """The Kubernetes target's cluster and ingress."""
    sagemaker: SageMakerSettings = Field(default_factory=SageMakerSettings)
    """The SageMaker target's region, role, image, bucket and endpoints."""
    pipeline: PipelineSettings = Field(default_factory=PipelineSettings)
    """The training pipeline's steps, retries, cache, data expectations and data volume."""
    schedule: ScheduleSettings = Field(default_factory=ScheduleSettings)
    """Scheduled retrain-and-redeploy: identity, missed runs, retries (docs/schedules.md)."""

    @field_validator("environments")
    @classmethod
    def _unique_environments(cls, envs: list[EnvironmentSettings]) -> list[EnvironmentSettings]:
        if not envs:
            raise ValueError("at least one environment is needed")
        names = [e.name for e in envs]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"environment names must be unique, repeated: {', '.join(dupes)}")
        production = [e.name for e in envs if e.kind == "production"]
        if len(production) > 1:
            raise ValueError(
                f"only one production environment is allowed, found {', '.join(production)}"
            )
        for i, env in enumerate(envs):
            if env.promotes_from is not None and env.promotes_from not in names[:i]:
                raise ValueError(
                    f"{env.name}.promotes_from: {env.promotes_from!r} is not an environment "
                    f"listed before {env.name!r} (before it: {', '.join(names[:i]) or 'none'})"
                )
            if env.kind == "production" and i == 0:
                raise ValueError(
                    f"{env.name}: a production environment is reached only by promotion, so an "
                    "environment must come before it"
                )
        return envs

    @model_validator(mode="after")
    def _gate_fits_the_task(self) -> Settings:
        check_task(self.training, self.gates)
        return self

    _project_file: Path | None = PrivateAttr(default=None)
    _discovery: Discovery | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _resolve_paths(self) -> Settings:
        # With a project file every path is absolute: values from the file were anchored to
        # its directory when it was read, defaults are anchored here, values from variables
        # and keywords to the working directory they were given in. Without one, paths stay
        # relative to the working directory, as before there were project roots.
        config = _config_path.get()
        anchor_defaults(self, config.parent if config is not None else None)
        return self

    @property
    def project_file(self) -> Path | None:
        """The project file these settings were read from (absolute); None: none was found."""
        return self._project_file

    @property
    def project_dir(self) -> Path | None:
        """The project's root: the project file's directory; None without a project file."""
        return self._project_file.parent if self._project_file is not None else None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        path = _config_path.get()
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if path is not None:
            sources.append(_ProjectFile(settings_cls, path))
        return tuple(sources)

    def _repr_html_(self) -> str:
        return fields(self.model_dump())

    def environment(self, name: str) -> EnvironmentSettings:
        """The environment called ``name``; a ConfigError lists the known ones."""
        for env in self.environments:
            if env.name == name:
                return env
        known = ", ".join(e.name for e in self.environments)
        raise ConfigError(f"no environment named {name!r}; configured: {known}")

    def promotion_source(self, name: str) -> EnvironmentSettings | None:
        """The environment ``name`` takes versions from (None for the first one)."""
        env = self.environment(name)
        if env.promotes_from is not None:
            return self.environment(env.promotes_from)
        index = self.environments.index(env)
        return self.environments[index - 1] if index else None

    def environment_of_kind(self, kind: str) -> EnvironmentSettings:
        """The first environment of a kind (``staging`` or ``production``)."""
        for env in self.environments:
            if env.kind == kind:
                return env
        raise ConfigError(f"no environment of kind {kind!r} is configured")


def describe_validation_error(exc: ValidationError, source: str) -> str:
    """One line naming each bad field, e.g. ``gates.min_value: Input should be ...``."""
    problems = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        problems.append(f"{loc}: {err['msg']}" + _given(err))
    return f"invalid settings in {source}: " + "; ".join(problems)


def _given(err: Any) -> str:
    if err.get("type") in {"missing", "extra_forbidden"} or "input" not in err:
        return "" if err.get("type") != "extra_forbidden" else " (unknown field)"
    value = err["input"]
    if isinstance(value, dict | list):
        return ""
    return f" (got {value!r})"


def find_config(config: str | os.PathLike[str] | None) -> Path | None:
    """The project file to read (see :func:`discover`), or None when there is none."""
    return discover(config).file


def load_settings(config: str | os.PathLike[str] | None = None, **overrides: Any) -> Settings:
    """Read settings from the project file, the environment and ``overrides``."""
    found = discover(config)
    path = found.file
    token = _config_path.set(path)
    try:
        _check_yaml(path)
        settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        source = _shown(path) if path else "settings"
        raise ConfigError(describe_validation_error(exc, source)) from None
    except SettingsError as exc:  # e.g. a variable holding invalid JSON
        raise ConfigError(f"invalid settings: {exc}") from None
    finally:
        _config_path.reset(token)
    settings._project_file = path
    settings._discovery = found
    _check_loaded(settings, path, overrides)
    return settings


class _ProjectFile(YamlConfigSettingsSource):
    """The project file, with its relative paths anchored to its directory."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path) -> None:
        # Set before super().__init__, which reads the file.
        self._base, self._model = path.parent, settings_cls
        super().__init__(settings_cls, yaml_file=path)

    def _read_file(self, file_path: Any) -> dict[str, Any]:
        data = super()._read_file(file_path)
        return anchor_data(self._model, data, self._base) if isinstance(data, dict) else data


def _shown(path: Path) -> str:
    # As the user would type it: relative to the working directory when inside it.
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _check_yaml(path: Path | None) -> None:
    if path is None:
        return
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{_shown(path)} is not valid YAML: {exc}".replace("\n", " ")) from None
    if data is not None and not isinstance(data, dict):
        kind = type(data).__name__
        raise ConfigError(f"{_shown(path)} must hold a mapping of settings, not {kind}")


def _check_loaded(settings: Settings, path: Path | None, overrides: dict[str, Any]) -> None:
    """What a field's type cannot say: a project file names its model; targets exist."""
    from mlops_kit import targets

    source = _shown(path) if path else "settings"
    if path is not None and "model_name" not in overrides:
        import yaml

        named = (yaml.safe_load(path.read_text()) or {}).get("model_name")
        if not named and not os.environ.get(f"{ENV_PREFIX}MODEL_NAME"):
            raise ConfigError(
                f"invalid settings in {source}: model_name: a project file must name its model"
            )

    known = targets.names()
    for i, env in enumerate(settings.environments):
        if env.target not in known:
            raise ConfigError(
                f"invalid settings in {source}: environments.{i}.target: unknown target "
                f"{env.target!r} (known: {', '.join(known)})"
            )

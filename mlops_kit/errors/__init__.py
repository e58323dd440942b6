"""The toolkit's exceptions: one root, structured subclasses, no third-party imports.

Every class is importable from here: the notebook runner finds a cell's error by its class
name in this package, so a new error goes in one of its modules and is listed below.
"""

from __future__ import annotations

from mlops_kit.errors.core import (
    ApprovalRefused as ApprovalRefused,
)
from mlops_kit.errors.core import (
    ConfigError as ConfigError,
)
from mlops_kit.errors.core import (
    DeploymentTimeout as DeploymentTimeout,
)
from mlops_kit.errors.core import (
    GateFailed as GateFailed,
)
from mlops_kit.errors.core import (
    GitOpsError as GitOpsError,
)
from mlops_kit.errors.core import (
    MissingDependencyError as MissingDependencyError,
)
from mlops_kit.errors.core import (
    ModelVersionNotFound as ModelVersionNotFound,
)
from mlops_kit.errors.core import (
    NotebookFailed as NotebookFailed,
)
from mlops_kit.errors.core import (
    ParameterError as ParameterError,
)
from mlops_kit.errors.core import (
    PromotionFailed as PromotionFailed,
)
from mlops_kit.errors.core import (
    PromotionRequired as PromotionRequired,
)
from mlops_kit.errors.core import (
    RegistryError as RegistryError,
)
from mlops_kit.errors.core import (
    RequestNotFound as RequestNotFound,
)
from mlops_kit.errors.core import (
    SchemaMismatch as SchemaMismatch,
)
from mlops_kit.errors.core import (
    SmokeTestFailed as SmokeTestFailed,
)
from mlops_kit.errors.core import (
    TargetError as TargetError,
)
from mlops_kit.errors.core import (
    TargetNotFound as TargetNotFound,
)
from mlops_kit.errors.core import (
    ToolkitError as ToolkitError,
)
from mlops_kit.errors.core import (
    UnsupportedSpec as UnsupportedSpec,
)
from mlops_kit.errors.pipeline import (
    DataError as DataError,
)
from mlops_kit.errors.pipeline import (
    DataValidationFailed as DataValidationFailed,
)
from mlops_kit.errors.pipeline import (
    EntrypointError as EntrypointError,
)
from mlops_kit.errors.pipeline import (
    EntrypointNotFound as EntrypointNotFound,
)
from mlops_kit.errors.pipeline import (
    InvalidCron as InvalidCron,
)
from mlops_kit.errors.pipeline import (
    ReproductionMismatch as ReproductionMismatch,
)
from mlops_kit.errors.pipeline import (
    ScheduleNotFound as ScheduleNotFound,
)
from mlops_kit.errors.pipeline import (
    SchedulerError as SchedulerError,
)
from mlops_kit.errors.pipeline import (
    SnapshotCorrupt as SnapshotCorrupt,
)
from mlops_kit.errors.pipeline import (
    SnapshotNotFound as SnapshotNotFound,
)
from mlops_kit.errors.pipeline import (
    StepFailed as StepFailed,
)
from mlops_kit.errors.pipeline import (
    StepMisconfigured as StepMisconfigured,
)
from mlops_kit.errors.runtime import (
    ArtifactStoreError as ArtifactStoreError,
)
from mlops_kit.errors.runtime import (
    LockTimeout as LockTimeout,
)
from mlops_kit.errors.runtime import (
    ProcessError as ProcessError,
)
from mlops_kit.errors.runtime import (
    ProcessExited as ProcessExited,
)
from mlops_kit.errors.runtime import (
    RegistryUnreachable as RegistryUnreachable,
)
from mlops_kit.errors.runtime import (
    SeldonEnvError as SeldonEnvError,
)
from mlops_kit.errors.runtime import (
    SeldonEnvMissing as SeldonEnvMissing,
)
from mlops_kit.errors.runtime import (
    StopFailed as StopFailed,
)
from mlops_kit.errors.runtime import (
    TrainingJobFailed as TrainingJobFailed,
)
from mlops_kit.errors.runtime import (
    WaitTimeout as WaitTimeout,
)
from mlops_kit.errors.verify import (
    CloudWatchUnavailable as CloudWatchUnavailable,
)
from mlops_kit.errors.verify import (
    EndpointUnavailable as EndpointUnavailable,
)
from mlops_kit.errors.verify import (
    InferenceFailed as InferenceFailed,
)
from mlops_kit.errors.verify import (
    LoadGeneratorFailed as LoadGeneratorFailed,
)
from mlops_kit.errors.verify import (
    LoadTestError as LoadTestError,
)
from mlops_kit.errors.verify import (
    MetricsUnavailable as MetricsUnavailable,
)
from mlops_kit.errors.verify import (
    MonitorError as MonitorError,
)
from mlops_kit.errors.verify import (
    OutputNotFound as OutputNotFound,
)
from mlops_kit.errors.verify import (
    PrometheusMissing as PrometheusMissing,
)
from mlops_kit.errors.verify import (
    QueryFailed as QueryFailed,
)
from mlops_kit.errors.verify import (
    RemoteLoadRefused as RemoteLoadRefused,
)
from mlops_kit.errors.verify import (
    SloFailed as SloFailed,
)

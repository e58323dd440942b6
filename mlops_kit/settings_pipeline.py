"""The ``pipeline:`` settings section: the training pipeline's steps, their retries and cache,
the data expectations the ``validate`` step checks, and the volume the data lives on.

A section of :class:`mlops_kit.settings.Settings` (variables ``MLOPS_KIT_PIPELINE__*``), kept
in its own module; the engine and its steps are :mod:`mlops_kit.pipeline` (docs/pipeline.md).
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from mlops_kit.settings_base import Section as _Section

ENTRYPOINT = r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$"
STEP_NAME = r"^[a-z][a-z0-9_]{0,39}$"
BUILTIN_STEPS = ("ingest", "validate", "preprocess", "train", "evaluate", "register")
"""The built-in steps, in the order they run."""
ColumnType = Literal["number", "integer", "float", "string", "bool", "category", "datetime"]


class Expectations(_Section):
    """What the ``validate`` step checks of the ingested table before anything trains on it.

    The target column must never be missing; the rest is declared here. A broken expectation
    stops the pipeline with a message naming the column.
    """

    min_rows: int | None = Field(default=None, ge=0)
    """Fewest rows the data may have; None: any."""
    max_rows: int | None = Field(default=None, ge=0)
    """Most rows the data may have; None: any."""
    columns: dict[str, ColumnType] = Field(default_factory=dict)
    """Columns that must be present, with their type (``number``, ``integer``, ``float``,
    ``string``, ``bool``, ``category``, ``datetime``)."""
    allow_missing: bool = True
    """Whether feature columns may hold missing values (the target never may)."""

    @model_validator(mode="after")
    def _bounds_in_order(self) -> Expectations:
        low, high = self.min_rows, self.max_rows
        if low is not None and high is not None and low > high:
            raise ValueError(f"min_rows {low} is above max_rows {high}")
        return self


class StepSettings(_Section):
    """How one step runs: its code (an entrypoint), retries, cache and parameters."""

    entrypoint: str | None = Field(default=None, pattern=ENTRYPOINT)
    """``package.module:function`` replacing the built-in step, or running an added one,
    imported from the project's directory: called as ``function(context, **inputs)``, returning
    a mapping of its outputs (docs/pipeline.md)."""
    after: str | None = Field(default=None, pattern=STEP_NAME)
    """For an added step: the step it runs after (default: before ``register``)."""
    inputs: list[str] | None = None
    """For an added step: names of the outputs of earlier steps it takes; replacing a
    built-in step: None keeps the built-in's."""
    outputs: list[str] | None = None
    """For an added step: names of the outputs it returns (may replace an earlier output, e.g.
    ``table``); replacing a built-in step: None keeps the built-in's."""
    retryable: bool | None = None
    """Retry the step when it raises; None: as built in (``ingest`` and ``register``, which
    reach storage and the registry, are retryable)."""
    retries: int | None = Field(default=None, ge=0, le=20)
    """Retries after the first attempt; None: ``pipeline.retries``."""
    params: dict[str, Any] = Field(default_factory=dict)
    """Parameters handed to the step (``context.params``); part of its cache key."""


class VolumeSettings(_Section):
    """The Kubernetes PersistentVolumeClaim the training data lives on, in a cluster.

    With it, every registered version also gets a ``VolumeSnapshot`` of the claim, committed to
    the GitOps repository under ``volume-snapshots/<model>/``.
    """

    claim: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=253)
    """Name of the PersistentVolumeClaim holding the data."""
    namespace: str | None = Field(default=None, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    """Namespace of the claim; None: the first environment's namespace."""
    snapshot_class: str | None = None
    """``VolumeSnapshotClass`` to use; None: the cluster's default class."""


class PipelineSettings(_Section):
    """The training pipeline: ingest → validate → preprocess → train → evaluate → register."""

    cache: bool = True
    """Skip a step whose code, parameters and inputs are unchanged, reusing its stored outputs."""
    retries: int = Field(default=2, ge=0, le=20)
    """Retries of a retryable step after its first attempt."""
    backoff: float = Field(default=1.0, ge=0, le=600)
    """Seconds before the first retry; each further retry waits twice as long."""
    max_backoff: float = Field(default=60.0, ge=0, le=3600)
    """Longest wait between two attempts, in seconds."""
    expectations: Expectations = Field(default_factory=Expectations)
    """What the ``validate`` step checks."""
    steps: dict[str, StepSettings] = Field(default_factory=dict)
    """Steps by name: a built-in one (``ingest``, ``validate``, ``preprocess``, ``train``,
    ``evaluate``, ``register``) to replace or tune, or a new one to add (with ``entrypoint``)."""
    volume: VolumeSettings | None = None
    """The PersistentVolumeClaim the data lives on in a cluster; None: no VolumeSnapshots."""

    @field_validator("steps")
    @classmethod
    def _added_steps_are_complete(cls, steps: dict[str, StepSettings]) -> dict[str, StepSettings]:
        for name, step in steps.items():
            if not re.fullmatch(STEP_NAME, name):
                raise ValueError(f"{name!r} is not a step name (lowercase, digits, '_')")
            if name in BUILTIN_STEPS:
                if step.after is not None:
                    raise ValueError(f"{name}.after: a built-in step keeps its place")
                continue
            if step.entrypoint is None:
                raise ValueError(
                    f"{name}: not a built-in step ({', '.join(BUILTIN_STEPS)}), so it needs an "
                    "entrypoint"
                )
            if not step.outputs:
                raise ValueError(f"{name}.outputs: an added step must name its outputs")
        return steps


__all__ = [
    "BUILTIN_STEPS",
    "Expectations",
    "PipelineSettings",
    "StepSettings",
    "VolumeSettings",
]

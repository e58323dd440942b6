"""The ``schedule:`` settings section: how scheduled retrain-and-redeploy runs behave.

A section of :class:`mlops_kit.settings.Settings` (variables ``MLOPS_KIT_SCHEDULE__*``). The
schedules themselves (name, cron expression, retries) are state, not settings: ``mlops-kit
schedule add`` keeps them in the state directory. What is configured here applies to every
schedule: the identity runs sign with, the missed-run policy, the retry backoff, the bounds
of the load test each run makes, and the image a Kubernetes CronJob runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from mlops_kit.settings_base import Section as _Section


class ScheduleSettings(_Section):
    """Scheduled retrain-and-redeploy: identity, missed runs, retries, the run's load test."""

    identity: str = Field(default="scheduler", pattern=r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$")
    """The name a schedule approves as, when the production policy says ``auto_promote``.

    Its approval is signed with :attr:`signing_key` and counts only if this name is listed in
    the GitOps repository's ``allowed_signers`` and allowed by the policy's ``approvers``.
    """
    signing_key: Path | None = None
    """The schedule identity's private SSH key; None: ``<state_dir>/keys/<identity>.key``,
    which ``mlops-kit schedule key`` creates (then register it: ``mlops-kit signers add``)."""
    missed: Literal["run_once", "skip"] = "run_once"
    """What the scheduler does with fire times it missed (it was stopped, or a run was still
    going): ``run_once`` runs once at start for all of them, ``skip`` waits for the next one."""
    misfire_grace_s: float = Field(default=30.0, ge=0, le=86_400)
    """Seconds a fire time may be late and still count as on time, not missed."""
    backoff_s: float = Field(default=10.0, ge=0, le=3600)
    """Seconds before the first retry of a failed run; each further retry waits twice as long."""
    max_backoff_s: float = Field(default=600.0, ge=0, le=86_400)
    """Longest wait between two attempts, whatever the doubling reaches."""
    run_timeout_s: float = Field(default=3600.0, gt=0, le=86_400)
    """Seconds one attempt may take before it is stopped and counted as failed."""
    load_users: int = Field(default=2, ge=1, le=100)
    """Simulated users of the staging load test each run makes (loopback, bounded)."""
    load_duration_s: float = Field(default=3.0, gt=0, le=300)
    """Seconds of that load test."""
    image: str = "mlops-kit:latest"
    """The project image a Kubernetes CronJob runs ``mlops-kit retrain`` in (it holds the
    project file and mlops-kit; ``mlops-kit build-context`` makes its build context)."""
    kfp_python: Path | None = None
    """Interpreter of an environment with ``kfp``, to compile the Kubeflow pipeline.

    kfp pins ``kubernetes<31``, so it cannot share an environment with
    ``mlops-kit[kubernetes]``. None: this interpreter if it has kfp, else
    ``<state_dir>/envs/kfp/bin/python``.
    """

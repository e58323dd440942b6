"""The pipeline's stages in the order ``make demo`` runs them: what each does, where it lives.

One list, read by the pipeline diagram (:mod:`mlops_kit.diagram`, ``images/pipeline.svg``) and
checked by the tests against the package and the notebooks, so neither can drift from the code.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Stage:
    """One step of the pipeline."""

    name: str
    """What a person calls the step."""
    what: str
    """The step in a few words."""
    module: str
    """The module under ``mlops_kit`` that does it (``train.gates``)."""
    notebook: str
    """The notebook that runs it (``02_create_pipeline``)."""
    environment: str | None = None
    """The environment it acts on, if any."""
    only_if: str | None = None
    """The condition it runs on, for a step that does not always run."""


STAGES: tuple[Stage, ...] = (
    Stage("set up", "state, registry, environments", "targets.setup", "01_setup_cluster"),
    Stage("train", "cached steps, your code, MLflow", "pipeline.engine", "02_create_pipeline"),
    Stage("register", "new version with lineage", "registry.client", "02_create_pipeline"),
    Stage("gate", "challenger vs champion", "train.gates", "02_create_pipeline"),
    Stage("deploy", "GitOps commit, sync", "gitops.deploy", "02_create_pipeline", "staging"),
    Stage("smoke test", "answers = local predictions", "verify.smoke", "02_create_pipeline",
          "staging"),
    Stage("open request", "evidence for the approver", "promote.promotion", "02_create_pipeline"),
    Stage("load test", "bounded load, SLO verdict", "verify.loadtest", "04_load_test", "staging"),
    Stage("approve", "allow-list, four-eyes", "promote.approvals", "03_promote_model"),
    Stage("roll out", "merge, sync, verify", "promote.promotion", "03_promote_model",
          "production"),
    Stage("roll back", "git revert, alias restored", "promote.promotion", "03_promote_model",
          "production", only_if="verification fails"),
    Stage("load test", "bounded load, SLO verdict", "verify.loadtest", "04_load_test",
          "production"),
    Stage("monitor", "Grafana dashboard, PromQL", "verify.monitoring", "04_load_test",
          "production"),
)  # fmt: skip
"""Every stage, in the order ``make demo`` runs them (01, 02, 04 on staging, 03, 04 on
production)."""


def runs(stages: tuple[Stage, ...] = STAGES) -> list[tuple[str, list[Stage]]]:
    """Consecutive stages of one notebook, grouped: one notebook run each, in order."""
    groups: list[tuple[str, list[Stage]]] = []
    for stage in stages:
        if groups and groups[-1][0] == stage.notebook:
            groups[-1][1].append(stage)
        else:
            groups.append((stage.notebook, [stage]))
    return groups

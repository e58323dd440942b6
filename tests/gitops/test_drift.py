"""A registry alias moved by hand is reported against the GitOps record, never followed."""

from __future__ import annotations

from mlops_kit.gitops.deploy import spec_for
from mlops_kit.gitops.drift import alias_drift, served_version
from mlops_kit.gitops.repository import GitOpsRepo
from mlops_kit.gitops.sync import SyncReport
from mlops_kit.registry.client import Registry
from mlops_kit.train.training import load_dataset, train_and_register, training_params


def test_a_hand_moved_alias_is_drift(project):
    data = load_dataset("wine")
    for n in (3, 4):
        train_and_register(project, data, training_params(n_estimators=n))
    repo = GitOpsRepo.from_settings(project.settings)
    repo.ensure()
    assert alias_drift(project, "production", repo=repo) is None  # nothing anywhere
    repo.write(spec_for(project, "production", 1), actor="alice", message="as promoted")
    registry = Registry(project)
    registry.set_alias("production", 1)
    assert alias_drift(project, "production", repo=repo) is None
    registry.set_alias("production", 2)  # by hand, in the MLflow UI
    drift = alias_drift(project, "production", repo=repo)
    assert drift is not None and (drift.alias_version, drift.gitops_version) == ("2", "1")
    assert "is v2 but the GitOps repository says v1" in drift.message()
    assert served_version(project, "production", repo) == "1"
    report = SyncReport("production", "0" * 40, drift=[drift.message()])
    assert report.summary().splitlines()[1].startswith("warning: production: registry alias")

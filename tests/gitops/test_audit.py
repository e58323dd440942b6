"""History is the truth: a rollout that failed and was reverted never counts as served."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from mlops_kit.gitops import audit
from mlops_kit.gitops.deploy import spec_for
from mlops_kit.gitops.repository import GitOpsRepo
from mlops_kit.train.training import load_dataset, train_and_register, training_params


def test_a_reverted_rollout_is_a_failed_attempt_never_served(project):
    data = load_dataset("wine")
    for n in (3, 4):
        train_and_register(project, data, training_params(n_estimators=n))
    repo = GitOpsRepo.from_settings(project.settings)
    repo.ensure()
    trailers = {"Request-Id": "r1", "Environment": "production"}
    repo.write(spec_for(project, "production", 1), actor="alice", message="v1", trailers=trailers)
    time.sleep(1.1)  # commit times have one-second resolution
    trailers = {"Request-Id": "r2", "Environment": "production"}
    bad = repo.write(
        spec_for(project, "production", 2), actor="alice", message="v2", trailers=trailers
    )
    time.sleep(1.1)
    during = datetime.now(UTC)
    time.sleep(1.1)
    repo.revert(bad, actor="alice", trailers={"Request-Id": "r2"})
    events = [e for e in audit.history(project) if e.environment == "production"]
    assert [(e.version, e.action) for e in events] == [
        ("1", "promotion"),
        ("2", "failed attempt"),
        ("1", "revert (failed rollout)"),
    ]
    assert audit.served_at(project, "production", during) == "1"
    assert audit.served_at(project, "production", datetime.now(UTC)) == "1"

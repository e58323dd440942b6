"""Promotion follows the environments' order: a version reaches an environment only after the
one it promotes from served it and passed its smoke test (real git and MLflow; no servers)."""

from __future__ import annotations

import pytest

from mlops_kit.errors import ConfigError
from mlops_kit.project import Project
from mlops_kit.promote.promotion import Promotions
from mlops_kit.registry.client import Registry
from mlops_kit.settings import EnvironmentSettings
from mlops_kit.train.training import load_dataset, train_and_register, training_params
from tests.support import seeded_registry, write_project


@pytest.fixture
def chain(tmp_path):
    seeded_registry(tmp_path / "state")  # the registry's schema is not what these are about
    project = Project.load(
        write_project(tmp_path),
        state_dir=tmp_path / "state",
        environments=[
            EnvironmentSettings(name="staging", kind="staging"),
            EnvironmentSettings(name="qa", kind="staging"),
            EnvironmentSettings(name="production", kind="production"),
        ],
    )
    train_and_register(project, load_dataset("wine"), training_params(n_estimators=5))
    Registry(project).tag(1, {"mlops.smoke.staging": "passed"})  # staging served v1
    return project, Promotions(project)


def test_production_takes_only_what_the_environment_before_it_passed(chain):
    project, promotions = chain
    with pytest.raises(ConfigError, match="qa must serve it and pass its smoke test first"):
        promotions.open(1)
    with pytest.raises(ConfigError, match="production takes versions from qa, not staging"):
        promotions.open(1, from_env="staging")
    with pytest.raises(ConfigError, match="staging is the first environment"):
        promotions.open(1, to_env="staging")
    request = promotions.open(1, to_env="qa")
    assert (request.from_env, request.to_env) == ("staging", "qa")
    assert not [b for b in promotions.repo.list_branches("promote/") if "v1" not in b]


def test_a_refused_request_leaves_no_branch(chain):
    _, promotions = chain
    with pytest.raises(ConfigError):
        promotions.open(1)  # qa never served v1
    assert promotions.repo.list_branches("promote/") == []
    assert promotions.all() == []


def test_a_newer_request_supersedes_older_pending_ones(chain):
    from mlops_kit.errors import ApprovalRefused

    _, promotions = chain
    older = promotions.open(1, to_env="qa", requested_by="alice")
    newer = promotions.open(1, to_env="qa", requested_by="carol")
    assert promotions.get(older.id).status == "superseded"
    assert promotions.get(older.id).outcome == f"superseded by {newer.id}"
    assert promotions.repo.list_branches("promote/") == [f"promote/{newer.id}"]
    with pytest.raises(ApprovalRefused, match="already superseded"):
        promotions.decide(older.id, "bob", "approve", rollout=False)
    assert [r.id for r in promotions.pending()] == [newer.id]


def test_a_branch_left_by_a_killed_open_is_pruned(chain):
    _, promotions = chain
    repo = promotions.repo
    repo.create_branch("promote/20260101-000000-wine-classifier-v1-dead")  # no request file
    request = promotions.open(1, to_env="qa")  # opening prunes under the promotion lock
    assert repo.list_branches("promote/") == [f"promote/{request.id}"]

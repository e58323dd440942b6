"""Credentials never reach outputs; actor names are printable and bounded."""

from __future__ import annotations

import pytest

from mlops_kit.errors import ApprovalRefused, ConfigError, ParameterError
from mlops_kit.gitops.commits import check_actor
from mlops_kit.notebook.runner import split_parameters
from mlops_kit.promote import approvals
from mlops_kit.redact import secret_reason
from mlops_kit.settings import ApprovalPolicy
from tests.support import NOTEBOOKS


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("comment", "SECRET_TOKEN_123"),
        ("comment", "my password is hunter2"),
        ("note", "AKIAIOSFODNN7EXAMPLE"),
        ("note", "ghp_" + "a" * 36),
        ("note", "-----BEGIN OPENSSH PRIVATE KEY-----"),
        ("api_key", "x"),
        ("db_password", "x"),
    ],
)
def test_secret_looking_parameters_are_refused_before_any_kernel(name, value):
    assert secret_reason(name, value)
    paths = [NOTEBOOKS / "03_promote_model.ipynb"]
    with pytest.raises(ParameterError, match="refused: its .*pass credentials through the env"):
        split_parameters(paths, {name: value})


def test_ordinary_parameters_pass():
    for name, value in (("comment", "approved by make demo"), ("signing_key", "/k/bob.demo-key")):
        assert secret_reason(name, value) is None


def test_a_secret_in_a_decision_comment_is_refused():
    request = approvals.PromotionRequest(
        id="r1", model_name="m", from_env="staging", to_env="production", candidate="2",
        current="1", requested_by="alice", requested_at="2026-01-01T00:00:00+00:00",
    )  # fmt: skip
    with pytest.raises(ApprovalRefused, match="comment is refused"):
        approvals.decide(
            ApprovalPolicy(), request, "bob", "approve", "SECRET_TOKEN_123", verified=True
        )


@pytest.mark.parametrize(
    "actor", ["\x1b[31mbob\x1b[0m", "bob\nAuthor: eve", "", "   ", "a" * 65, "eve <e@x>"]
)
def test_actor_names_are_printable_and_bounded(actor):
    with pytest.raises(ConfigError, match="not a usable name"):
        check_actor(actor)


def test_real_names_are_fine():
    for actor in ("bob", "José Núñez", "ci-bot@example.org", "registry-events"):
        check_actor(actor)

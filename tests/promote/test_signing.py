"""Signed decisions: a name counts only with a signature that verifies for it (real git, real
ssh-keygen, real MLflow registry; no servers)."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from mlops_kit.errors import ApprovalRefused
from mlops_kit.gitops.repository import GitOpsRepo
from mlops_kit.project import Project
from mlops_kit.promote import approvals, signing
from mlops_kit.promote.promotion import Promotions, request_path
from mlops_kit.promote.signers import Signers
from mlops_kit.registry.client import Registry
from mlops_kit.settings import ApprovalPolicy, EnvironmentSettings
from mlops_kit.train.training import load_dataset, train_and_register, training_params
from tests.support import seeded_registry, write_project
from tests.support.signers import demo_signers, key


def _project(tmp_path, identity="ssh"):
    policy = ApprovalPolicy(approvers=["bob", "carol"], identity=identity)
    seeded_registry(tmp_path / "state")  # the registry's schema is not what these are about
    project = Project.load(
        write_project(tmp_path),
        state_dir=tmp_path / "state",
        environments=[
            EnvironmentSettings(name="staging", kind="staging"),
            EnvironmentSettings(name="production", kind="production", approval=policy),
        ],
    )
    train_and_register(project, load_dataset("wine"), training_params(n_estimators=5))
    Registry(project).tag(1, {"mlops.smoke.staging": "passed"})  # as if staging served it
    return project


@pytest.fixture
def signed(tmp_path):
    project = _project(tmp_path)
    demo_signers(project)
    promotions = Promotions(project)
    return project, promotions, promotions.open(1, requested_by="alice")


def test_a_decision_needs_the_approvers_own_key(signed):
    project, promotions, request = signed
    head = promotions.repo.head()
    with pytest.raises(ApprovalRefused, match="identity ssh: sign the decision"):
        promotions.approve(request.id, "bob")
    with pytest.raises(ApprovalRefused, match="does not verify for 'bob'"):
        promotions.approve(request.id, "bob", signing_key=key(project, "alice"))
    assert promotions.repo.head() == head and promotions.get(request.id).status == "pending"
    done = promotions.decide(
        request.id, "bob", "approve", "ok", rollout=False, signing_key=key(project, "bob")
    )
    decision = done.decisions[-1]
    assert decision.identity == "ssh" and "BEGIN SSH SIGNATURE" in decision.signature
    assert [ok for _, ok in promotions.verify_decisions(promotions.get(request.id))] == [True]


def test_anyone_can_re_verify_a_stored_signature_with_ssh_keygen(signed, tmp_path):
    project, promotions, request = signed
    promotions.decide(
        request.id, "bob", "approve", "ok", rollout=False, signing_key=key(project, "bob")
    )
    repo = GitOpsRepo.from_settings(project.settings)
    stored = yaml.safe_load(repo.read_file(repo.branch, request_path(request.id)))
    record = approvals.PromotionRequest.from_dict(stored)
    (tmp_path / "allowed_signers").write_text(repo.read_file(repo.branch, "allowed_signers"))
    (tmp_path / "decision.sig").write_text(record.decisions[0].signature)
    verify = subprocess.run(
        ["ssh-keygen", "-Y", "verify", "-f", "allowed_signers", "-I", "bob",
         "-n", signing.NAMESPACE, "-s", "decision.sig"],
        input=approvals.decision_message(record, record.decisions[0]),
        capture_output=True, text=True, cwd=tmp_path, check=False,
    )  # fmt: skip
    assert verify.returncode == 0, verify.stderr
    assert 'Good "mlops-kit-decision" signature for bob' in verify.stdout


def test_an_edited_decision_no_longer_counts(signed):
    project, promotions, request = signed
    promotions.decide(
        request.id, "bob", "approve", "ok", rollout=False, signing_key=key(project, "bob")
    )
    stored = promotions.get(request.id)
    forged = approvals.PromotionRequest.from_dict(
        {**stored.to_dict(), "candidate": "7"}
    )  # the signature covered version 1
    policy = project.settings.environment("production").approval
    with pytest.raises(ApprovalRefused, match="unverified approvals: bob"):
        signing.check_signed(policy, forged, promotions.signers.text())
    signing.check_signed(policy, stored, promotions.signers.text())


def test_adding_a_signer_is_a_reviewed_change(signed, tmp_path):
    project, promotions, _ = signed
    mallory = signing.create_key(tmp_path / "mallory", "mallory")
    public = (tmp_path / "mallory.pub").read_text()
    signers = Signers(promotions.repo)
    with pytest.raises(ApprovalRefused, match="needs the signature of a listed signer"):
        signers.add("mallory", public, actor="alice")
    with pytest.raises(ApprovalRefused, match="cannot review their own addition"):
        signers.add("mallory", public, actor="mallory", reviewer_key=mallory)
    with pytest.raises(ApprovalRefused, match="'mallory' is not in allowed_signers"):
        signers.add("dave", public, actor="mallory", reviewer_key=mallory)
    assert [s.name for s in signers.all()] == ["alice", "bob", "carol"]
    sha = signers.add("dave", public, actor="alice", reviewer_key=key(project, "alice"))
    assert sha and [s.name for s in signers.all()][-1] == "dave"
    assert promotions.repo.history(path="allowed_signers")[0].trailers["Reviewed-By"] == "alice"


def test_ci_identity_comes_from_the_platform_variable(tmp_path, monkeypatch):
    project = _project(tmp_path, identity="ci")
    promotions = Promotions(project)
    request = promotions.open(1, requested_by="alice")
    monkeypatch.setenv("GITHUB_ACTOR", "carol")
    with pytest.raises(ApprovalRefused, match=r"identity ci: \$GITHUB_ACTOR is 'carol'"):
        promotions.decide(request.id, "bob", "approve", rollout=False)
    monkeypatch.setenv("GITHUB_ACTOR", "bob")
    done = promotions.decide(request.id, "bob", "approve", rollout=False)
    assert done.status == "approved" and done.decisions[-1].identity == "ci"


def test_identity_none_is_recorded_as_unverified(tmp_path):
    project = _project(tmp_path, identity="none")
    promotions = Promotions(project)
    request = promotions.open(1, requested_by="alice")
    done = promotions.decide(request.id, "bob", "approve", rollout=False)
    assert done.decisions[-1].identity == "none" and done.decisions[-1].signature == ""


def test_signer_files_refuse_junk():
    with pytest.raises(Exception, match="not an OpenSSH public key"):
        signing.public_key("hello")
    with pytest.raises(Exception, match="signer name"):
        signing.check_name("bob\x1b[31m")
    text = signing.render([signing.Signer("bob", "ssh-ed25519 AAAA")])
    assert signing.parse(text) == [signing.Signer("bob", "ssh-ed25519 AAAA")]


def test_the_cli_signs_with_the_key_it_is_given(tmp_path, capsys):
    from mlops_kit.cli import main

    config = tmp_path / "mlops.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "model_name": "wine-classifier",
                "state_dir": str(tmp_path / "state"),
                "environments": [
                    {"name": "staging", "kind": "staging"},
                    {"name": "production", "kind": "production",
                     "approval": {"approvers": ["bob", "carol"], "min_approvals": 2}},
                ],
            }
        )
    )  # fmt: skip
    project = Project.load(config)
    train_and_register(project, load_dataset("wine"), training_params(n_estimators=5))
    Registry(project).tag(1, {"mlops.smoke.staging": "passed"})
    assert main(["--config", str(config), "signers", "demo", "alice", "bob", "--as", "t"]) == 0
    assert "DEMO KEY" in capsys.readouterr().out
    request = Promotions(project).open(1, requested_by="alice")
    alice, bob = (str(key(project, n)) for n in ("alice", "bob"))
    approve = ["--config", str(config), "approve", request.id, "--as", "bob"]
    assert main([*approve, "--key", alice]) != 0
    assert "does not verify for 'bob'" in capsys.readouterr().err
    assert main([*approve, "--key", bob]) == 0
    assert f"{request.id}: pending" in capsys.readouterr().out
    assert main(["--config", str(config), "signers", "verify", request.id]) == 0
    out = capsys.readouterr().out
    assert "approve by bob" in out and out.rstrip().endswith(": verified")

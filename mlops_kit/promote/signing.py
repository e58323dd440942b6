"""Signed decisions: who approved is checked with git's own SSH signing, never taken on trust.

A decision is a short canonical text (request, model, version, environment, actor, decision,
comment, time) signed with the approver's SSH key (``ssh-keygen -Y sign``). The GitOps
repository holds ``allowed_signers`` (the format of ``ssh-keygen(1)`` and
``gpg.ssh.allowedSignersFile``) mapping each name to its public keys; a decision counts only
if its signature verifies for the name it carries. The text and the signature are stored with
the decision, so anyone can re-check it::

    ssh-keygen -Y verify -f allowed_signers -I bob -n mlops-kit-decision \
        -s decision.sig < decision.txt

Changing ``allowed_signers`` is itself a reviewed change: once it names anyone, a new entry
needs the signature of someone already in it, other than the person added.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mlops_kit.errors import ApprovalRefused, ConfigError
from mlops_kit.promote import approvals

if TYPE_CHECKING:
    from mlops_kit.promote.approvals import Decision, DecisionKind, PromotionRequest
    from mlops_kit.settings import ApprovalPolicy

NAMESPACE = "mlops-kit-decision"
"""The ``-n`` namespace of every decision signature: a signature made for git commits or
anything else never passes for a decision."""
ALLOWED_SIGNERS = "allowed_signers"
"""Where the name-to-key map lives in the GitOps repository."""
KEY_VARIABLE = "MLOPS_KIT_SIGNING_KEY"
DEMO_LABEL = "DEMO KEY, mlops-kit demo only"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$")
_TIMEOUT = 30


@dataclass(frozen=True)
class Signer:
    """One line of ``allowed_signers``: a name and one of its public keys."""

    name: str
    key: str

    def line(self) -> str:
        return f'{self.name} namespaces="{NAMESPACE}" {self.key}'


def parse(text: str) -> list[Signer]:
    """The signers an ``allowed_signers`` text names (comments and blank lines skipped)."""
    found = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, _, rest = line.partition(" ")
        key = " ".join(part for part in rest.split() if not part.startswith("namespaces="))
        found.append(Signer(name, key))
    return found


def render(signers: list[Signer]) -> str:
    header = (
        "# Who may sign mlops-kit decisions: name, namespace, public key (ssh-keygen(1)).\n"
        "# Changes need a signature by someone already listed: `mlops-kit signers add`.\n"
    )
    return header + "".join(s.line() + "\n" for s in signers)


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise ConfigError(
            f"signer name {name!r}: letters, digits and . _ @ + - only, at most 64 characters"
        )
    return name


def public_key(text: str) -> str:
    """``type base64`` of an OpenSSH public key line (its comment dropped); refuses junk."""
    parts = text.strip().split()
    if len(parts) < 2 or not parts[0].startswith(("ssh-", "ecdsa-", "sk-")):
        raise ConfigError("not an OpenSSH public key (expected e.g. 'ssh-ed25519 AAAA...')")
    return f"{parts[0]} {parts[1]}"


def signing_key(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """The key to sign with: the one named, else ``$MLOPS_KIT_SIGNING_KEY``, else git's
    ``user.signingkey`` (only an SSH key file). None when there is none."""
    value = os.fspath(explicit) if explicit else os.environ.get(KEY_VARIABLE, "")
    if not value and shutil.which("git"):
        out = subprocess.run(
            ["git", "config", "--get", "user.signingkey"],
            capture_output=True,
            text=True,
            timeout=_TIMEOUT,
            check=False,
        )
        value = out.stdout.strip() if out.returncode == 0 else ""
        if value.startswith("key::") or not Path(value).expanduser().is_file():
            value = ""
    return Path(value).expanduser() if value else None


def sign(message: str, key: Path) -> str:
    """The armored SSH signature of ``message`` by ``key`` (private key, or public with agent)."""
    if not key.is_file():
        raise ConfigError(f"signing key {key} does not exist")
    out = _ssh_keygen(["-Y", "sign", "-f", str(key), "-n", NAMESPACE], message)
    if out.returncode != 0 or "BEGIN SSH SIGNATURE" not in out.stdout:
        reason = out.stderr.strip().splitlines()[-1:] or ["ssh-keygen failed"]
        raise ConfigError(f"could not sign with {key}: {reason[0]}")
    return out.stdout


def verifies(message: str, signature: str, name: str, allowed_signers: str) -> bool:
    """Whether ``signature`` over ``message`` is by one of ``name``'s keys."""
    if not signature or not any(s.name == name for s in parse(allowed_signers)):
        return False
    with tempfile.TemporaryDirectory(prefix="mlops-kit-verify-") as tmp:
        signers = Path(tmp, "allowed_signers")
        signers.write_text(allowed_signers)
        sig = Path(tmp, "decision.sig")
        sig.write_text(signature)
        args = ["-Y", "verify", "-f", str(signers), "-I", name, "-n", NAMESPACE, "-s", str(sig)]
        return _ssh_keygen(args, message).returncode == 0


def require(message: str, signature: str, name: str, allowed_signers: str, request: str) -> None:
    """Raise ApprovalRefused unless the signature verifies for ``name``."""
    if not parse(allowed_signers):
        raise ApprovalRefused(
            request, name, "no signers are registered (add one: `mlops-kit signers add`)"
        )
    if not any(s.name == name for s in parse(allowed_signers)):
        raise ApprovalRefused(request, name, f"{name!r} is not in {ALLOWED_SIGNERS}")
    if not verifies(message, signature, name, allowed_signers):
        raise ApprovalRefused(
            request, name, f"the signature does not verify for {name!r}: a key of {name} must sign"
        )


def attest(
    policy: ApprovalPolicy,
    request: PromotionRequest,
    actor: str,
    kind: DecisionKind,
    comment: str,
    at: str,
    key: str | os.PathLike[str] | None,
    allowed_signers: Callable[[], str],
) -> str:
    """Check that ``actor`` makes this decision the policy's way; the signature, if any.

    ``identity: ssh`` signs :func:`approvals.message` with ``key`` and verifies it for
    ``actor``; ``ci`` compares the CI platform's identity variable; ``none`` trusts the name.
    """
    if policy.identity == "none":
        return ""
    if policy.identity == "ci":
        who = os.environ.get(policy.ci_identity_variable, "")
        if who != actor:
            seen = repr(who) if who else "not set"
            raise ApprovalRefused(
                request.id, actor, f"identity ci: ${policy.ci_identity_variable} is {seen}"
            )
        return ""
    path = signing_key(key)
    if path is None:
        raise ApprovalRefused(
            request.id,
            actor,
            "identity ssh: sign the decision with your key "
            f"(--key PATH, ${KEY_VARIABLE} or git config user.signingkey)",
        )
    text = approvals.message(request, actor, kind, comment, at)
    signature = sign(text, path)
    require(text, signature, actor, allowed_signers(), request.id)
    return signature


def verify_decisions(
    request: PromotionRequest, allowed_signers: str
) -> list[tuple[Decision, bool]]:
    """Each decision of ``request`` and whether its signature verifies against the file."""
    return [
        (d, verifies(approvals.decision_message(request, d), d.signature, d.actor, allowed_signers))
        for d in request.decisions
    ]


def check_signed(policy: ApprovalPolicy, request: PromotionRequest, allowed_signers: str) -> None:
    """Refuse a rollout unless enough of the approvals still verify (the request file is
    plain text in git: an edited decision must not count)."""
    if policy.identity != "ssh":
        return
    checked = verify_decisions(request, allowed_signers)
    good = {d.actor for d, ok in checked if ok and d.kind == "approve"}
    if len(good) < policy.min_approvals:
        unverified = ", ".join(a for a in request.approvers if a not in good) or "none"
        raise ApprovalRefused(
            request.id, ", ".join(request.approvers), f"unverified approvals: {unverified}"
        )


def create_key(path: Path, comment: str) -> Path:
    """A new ed25519 key pair at ``path`` (private, 0600) and ``path.pub``; returns ``path``."""
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    out = _ssh_keygen(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)], "")
    if out.returncode != 0:
        raise ConfigError(f"ssh-keygen could not create {path}: {out.stderr.strip()}")
    path.chmod(0o600)
    return path


def demo_key_path(state_dir: Path, name: str) -> Path:
    return state_dir / "keys" / f"{check_name(name)}.demo-key"


def _ssh_keygen(args: list[str], stdin: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("ssh-keygen")
    if exe is None:
        raise ConfigError("ssh-keygen not found: install OpenSSH to sign and verify decisions")
    try:
        return subprocess.run(
            [exe, *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise ConfigError(
            f"ssh-keygen {args[1]} timed out (a key with a passphrase needs ssh-agent)"
        ) from None

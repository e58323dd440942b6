"""An environment with kfp for the Kubeflow tests: kfp pins kubernetes<31, the test
environment has kubernetes>=37, so kfp gets a virtualenv of its own (``make kfp-env``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support import REPO

KFP_ENV = REPO / ".venv-kfp"
KFP_REQUIREMENT = "kfp>=2.9,<3"


def kfp_python() -> Path:
    """The interpreter of ``.venv-kfp``, created (venv + pip) when it cannot import kfp."""
    python = KFP_ENV / "bin" / "python"
    if python.exists() and _imports_kfp(python):
        return python
    base = getattr(sys, "_base_executable", None) or sys.executable
    if not python.exists():
        subprocess.run([base, "-m", "venv", str(KFP_ENV)], check=True, timeout=120)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q", KFP_REQUIREMENT],
        check=True, timeout=900, capture_output=True,
    )  # fmt: skip
    return python


def _imports_kfp(python: Path) -> bool:
    done = subprocess.run([str(python), "-c", "import kfp.compiler"], capture_output=True,
                          timeout=120)  # fmt: skip
    return done.returncode == 0

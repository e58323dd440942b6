"""Notebook 03 in JupyterLab, clicked in headless Chromium: Approve puts the candidate live.

Everything on the path is real: a JupyterLab server on 127.0.0.1, Debian's Chromium driven by
Playwright, an ipykernel running the notebook, the ipywidgets comm carrying the click,
the promotion merged in the GitOps repository, and production's MLServer answering on
loopback before (v1) and after (v2) the click. A load-test report opens in the same browser
with every network request refused, and still shows its figures.

``MLOPS_KIT_SCREENSHOTS=images`` (``make screenshots``) keeps the README's pictures: the panel
before and after the decision, and the load-test report.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import yaml

from tests.support import NOTEBOOKS, seeded_registry
from tests.support.jupyter import (
    CHROMIUM,
    JupyterLab,
    launch_chromium,
    open_notebook,
    run_all_cells,
)

if TYPE_CHECKING:
    from mlops_kit.project import Project

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.timeout(300)]

NOTEBOOK = "03_promote_model.ipynb"
# Read at import: the tests' isolation removes every MLOPS_KIT_* variable before they run.
SCREENSHOTS = os.environ.get("MLOPS_KIT_SCREENSHOTS")
KEEP = Path(SCREENSHOTS).resolve() if SCREENSHOTS else None
PROJECT_FILE = {
    "project": "browser-test",
    "model_name": "wine-classifier",
    "environments": [
        {"name": "staging", "kind": "staging"},
        {
            "name": "production",
            "kind": "production",
            "approval": {"approvers": ["bob"], "four_eyes": True, "min_approvals": 1},
        },
    ],
}


def keep(target: Any, name: str, **options: Any) -> None:
    """Save a screenshot of a page or an element as ``$MLOPS_KIT_SCREENSHOTS/<name>``, if set."""
    if KEEP is not None:
        KEEP.mkdir(parents=True, exist_ok=True)
        target.screenshot(path=str(KEEP / name), **options)


def _install_chromium() -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium"]
    for cmd in (install, ["apt-get", "update", "-qq"], install):
        subprocess.run(cmd, env=env, capture_output=True, timeout=600, check=False)
        if CHROMIUM.is_file():
            return


@pytest.fixture(scope="module")
def chromium() -> Path:
    """Debian's Chromium; installed here when we are root (CI installs it in .ci/run)."""
    if not CHROMIUM.is_file() and os.geteuid() == 0 and shutil.which("apt-get"):
        _install_chromium()
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} is missing and we are not root to install it (apt chromium)")
    return CHROMIUM


@pytest.fixture
def lab_root(tmp_path: Path) -> Path:
    """A project laid out as `mlops-kit init` does: the project file, notebook 03 in notebooks/.

    The state directory is relative: to the project file, not to the kernel's notebooks/.
    """
    root = tmp_path / "lab"
    (root / "notebooks").mkdir(parents=True)
    shutil.copy(NOTEBOOKS / NOTEBOOK, root / "notebooks" / NOTEBOOK)
    settings = {**PROJECT_FILE, "state_dir": "../state"}
    (root / "mlops.yaml").write_text(yaml.safe_dump(settings, sort_keys=False))
    return root


@pytest.fixture
def lab(tmp_path: Path, lab_root: Path, chromium: Path) -> Iterator[JupyterLab]:
    """`mlops-kit lab` in the project, as the README says: no MLOPS_KIT_* variables by hand.

    Started first so that it boots while the project is set up. Its teardown runs after
    ``pending``'s: kernels are down before the servers are stopped.
    """
    server = JupyterLab(root=lab_root, home=tmp_path / "jupyter")
    # bob signs with his key the way git users do: git config user.signingkey.
    gitconfig = tmp_path / "gitconfig"
    key = tmp_path / "state" / "keys" / "bob.demo-key"
    gitconfig.write_text(f"[user]\n\tsigningkey = {key}\n")
    server.start({"GIT_CONFIG_GLOBAL": str(gitconfig)})
    try:
        yield server
    finally:
        killed = server.stop()
        if killed:
            print(f"killed kernels that outlived jupyter lab: {killed}")
        assert not server.kernel_pids(), "a kernel survived SIGKILL"


@dataclass
class Pending:
    """A project whose production serves v1 while v2, on staging, waits for approval."""

    project: Project
    request_id: str
    endpoint: str
    body: dict[str, Any]

    def production_answers(self) -> str:
        """The model version in a real V2 inference answer from production's MLServer."""
        with httpx.Client(timeout=30, trust_env=False) as http:
            response = http.post(self.endpoint + "/infer", json=self.body)
        assert response.status_code == 200, response.text
        return str(response.json()["model_version"])


@pytest.fixture
def pending(lab: JupyterLab, lab_root: Path) -> Iterator[Pending]:
    """alice's request to promote v2 from staging to production (which serves v1)."""
    from mlops_kit.gitops.deploy import deploy, smoke
    from mlops_kit.project import Project
    from mlops_kit.promote.promotion import Promotions
    from mlops_kit.registry.client import Registry
    from mlops_kit.targets import for_environment
    from mlops_kit.targets.local import stop_all
    from mlops_kit.train.gates import evaluate_gate
    from mlops_kit.train.training import load_dataset, train_and_register, training_params
    from mlops_kit.verify import v2
    from tests.support.signers import demo_signers, key

    project = Project.load(lab_root / "mlops.yaml")
    seeded_registry(project.state_dir)  # the registry's schema is not what this is about
    try:
        demo_signers(project, ("alice", "bob"))
        data = load_dataset("wine")
        for n in (5, 10):
            train_and_register(project, data, training_params(n_estimators=n))
        registry = Registry(project)
        deploy(project, "staging", 1, actor="alice")
        smoke(project, "staging", 1)
        first = Promotions(project).open(1, requested_by="alice")
        Promotions(project).approve(first.id, "bob", signing_key=key(project, "bob"))
        deploy(project, "staging", 2, actor="alice")
        smoke(project, "staging", 2)
        registry.set_alias("staging", 2)
        # The evidence notebook 02 would have gathered: the gate verdict, the smoke test.
        evaluate_gate(project, 2, data)
        smoke(project, "staging", 2)
        request = Promotions(project).open(2, requested_by="alice")
        endpoint = for_environment(project.settings, "production").endpoint(project.model_name)
        yield Pending(project, request.id, endpoint, v2.encode_dataframe(data.X_test.head(1)))
    finally:
        stop_all(project.state_dir)


def test_approve_in_jupyterlab_rolls_out_to_production(lab, pending, tmp_path, record_property):
    from playwright.sync_api import expect, sync_playwright

    from mlops_kit.promote.promotion import Promotions

    assert pending.production_answers() == "1"
    lab.wait_ready(timeout=90)
    shot = tmp_path / "approved.png"
    record_property("screenshot", str(shot))
    started = time.monotonic()
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright, tmp_path / "chromium", tmp_path / "jupyter" / "home")
        page = browser.pages[0] if browser.pages else browser.new_page()
        page.set_default_timeout(30_000)
        try:
            kernel = open_notebook(page, lab, f"notebooks/{NOTEBOOK}", timeout=60)
            assert kernel == "Python 3 (ipykernel)"
            # The kernel runs the interpreter these tests run in (the venv's), not another one.
            assert [argv[0] for argv in lab.kernels().values()] == [sys.executable]
            run_all_cells(page, timeout=120)

            panel = page.locator(".mlops-approval-panel")
            expect(panel.get_by_text(pending.request_id)).to_be_visible()
            approve = panel.locator("button.mlops-approve")
            expect(approve).to_be_enabled()
            panel.locator(".mlops-approver input").fill("bob")
            panel.locator(".mlops-comment textarea").fill("clicked in Chromium")
            keep(panel, "approval-panel-pending.png")
            approve.click()

            # The rollout (merge, sync, smoke test) runs in the kernel behind the click.
            outcome = panel.locator(".mlops-outcome")
            expect(outcome).to_be_visible(timeout=90_000)
            outcome.scroll_into_view_if_needed()
            page.screenshot(path=str(shot))
            expect(outcome).to_contain_text("rolled_out: production serves v2", timeout=1_000)
            expect(approve).to_be_disabled()
            keep(panel, "approval-panel-approved.png")
        except BaseException:
            if not shot.exists():
                page.screenshot(path=str(shot))
            print(f"\njupyter lab log:\n{lab.log_tail()}")
            for log in sorted((tmp_path / "state" / "serving").glob("*/*/server.log")):
                tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
                print(f"\n{log}:\n{tail}")
            raise
        finally:
            print(f"\nscreenshot: {shot} (browser part {time.monotonic() - started:.1f} s)")
            browser.close()

    assert pending.production_answers() == "2"
    request = Promotions(pending.project).get(pending.request_id)
    assert request.status == "rolled_out"
    assert request.approvers == ["bob"]
    assert request.decisions[0].comment == "clicked in Chromium"
    assert [ok for _, ok in Promotions(pending.project).verify_decisions(request)] == [True]


@pytest.fixture
def staging(tmp_path: Path) -> Iterator[Path]:
    """A project file whose staging serves wine v1 (the servers are stopped afterwards)."""
    from mlops_kit.gitops.deploy import deploy
    from mlops_kit.project import Project
    from mlops_kit.targets.local import stop_all
    from mlops_kit.train.training import load_dataset, train_and_register, training_params

    config = tmp_path / "mlops.yaml"
    config.write_text(yaml.safe_dump({**PROJECT_FILE, "state_dir": str(tmp_path / "state")}))
    project = Project.load(config)
    seeded_registry(project.state_dir)  # the registry's schema is not what this is about
    try:
        train_and_register(project, load_dataset("wine"), training_params(n_estimators=10))
        deploy(project, "staging", 1, actor="alice")
        yield config
    finally:
        stop_all(project.state_dir)


def test_the_load_test_report_reads_offline(staging, chromium, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    from mlops_kit.notebook import runner

    (run,) = runner.run_notebooks(
        [str(NOTEBOOKS / "04_load_test.ipynb")],
        {"users": 8, "duration_s": 4.0},
        output_dir=tmp_path / "reports",
        config=staging,
        progress_bar=False,
    )
    refused: list[str] = []
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright, tmp_path / "chromium", tmp_path / "home")
        page = browser.pages[0] if browser.pages else browser.new_page()
        try:
            # Anything but the file itself (and its inline data: images) would be the network.
            page.route(
                "**/*",
                lambda route: (
                    route.continue_()
                    if route.request.url.startswith(("file:", "data:"))
                    else (refused.append(route.request.url), route.abort())
                ),
            )
            page.goto(run.html.as_uri())
            expect(page.get_by_text("04_load_test ✔ passed")).to_be_visible()
            expect(page.get_by_text("Load test of wine-classifier v1 in staging")).to_be_visible()
            expect(page.locator(".mlops-verdict").last).to_contain_text("SLO PASSED in staging")
            keep(
                page,
                "load-test-report.png",
                clip=_clip(page, "#Run-the-load", "#Throughput-over-time"),
                full_page=True,
            )
        finally:
            browser.close()
    assert refused == []


def _clip(page: Any, start: str, end: str) -> dict[str, float]:
    """The page region from element ``start`` down to element ``end`` (for a screenshot)."""
    top = page.locator(start).bounding_box()
    bottom = page.locator(end).bounding_box()
    width = page.viewport_size["width"] if page.viewport_size else 1400
    return {"x": 0, "y": top["y"] - 12, "width": width, "height": bottom["y"] - top["y"]}

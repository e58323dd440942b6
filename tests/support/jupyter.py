"""JupyterLab on loopback and Debian's headless Chromium, for tests that click in notebooks.

:class:`JupyterLab` starts JupyterLab the way the README says, ``mlops-kit lab`` in the project
(the test interpreter's own, as ``python -m mlops_kit.cli lab``), as a subprocess in its own
process group, with every directory Jupyter, IPython and matplotlib write to (config, data,
runtime, workspaces, user settings, ``$HOME``) inside one temporary folder, so a test touches
nothing outside it. Only test plumbing (token, those directories, no update checks) is added
after ``--``; address, root, ``--allow-root`` and the project's settings come from the toolkit.
:meth:`JupyterLab.stop` shuts kernels down through the REST API, stops the server, kills its
process group and then any kernel still holding a connection file in the runtime directory
(kernels run in sessions of their own): no process outlives the test.

The browser side drives JupyterLab the way a person does (menus, fields, buttons) and reads
the notebook model through ``window.jupyterapp`` (``--LabApp.expose_app_in_browser``, as
JupyterLab's own Galata tests do) only to know when the kernel is ready and cells are done.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page, Playwright

CHROMIUM = Path("/usr/bin/chromium")
"""Debian's chromium; Playwright drives it through ``executable_path`` (no bundled browsers)."""

# The machines' network is closed: without these Chromium keeps trying (and failing) to
# reach Google's services, which slows every page and fills the log with refusals.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",  # containers often have a tiny /dev/shm
    "--no-proxy-server",  # everything we open is on loopback
]

# User settings that keep JupyterLab quiet and deterministic offline: no news or update
# toasts over the notebook, and every cell rendered (no windowing), so outputs far down a
# notebook are in the DOM.
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class JupyterLab:
    """``mlops-kit lab`` for the project at ``root`` (127.0.0.1), Jupyter's state under ``home``."""

    root: Path
    home: Path
    token: str = field(default_factory=lambda: secrets.token_hex(24))
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    _extra_env: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def runtime_dir(self) -> Path:
        return self.home / "runtime"

    @property
    def log_path(self) -> Path:
        return self.home / "jupyterlab.log"

    def environment(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """The server's environment (kernels inherit it): Jupyter's paths inside ``home``."""
        env = dict(os.environ)
        env.update(
            {
                "HOME": str(self.home / "home"),
                "JUPYTER_CONFIG_DIR": str(self.home / "config"),
                "JUPYTER_DATA_DIR": str(self.home / "data"),
                "JUPYTER_RUNTIME_DIR": str(self.runtime_dir),
                "IPYTHONDIR": str(self.home / "ipython"),
                "MPLCONFIGDIR": str(self.home / "matplotlib"),
                "JUPYTER_PLATFORM_DIRS": "1",
                # The kernel spec's "python" is this interpreter; put its bin first anyway.
                "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(extra or {})
        return env

    def start(self, env: dict[str, str] | None = None) -> JupyterLab:
        """Launch the server without waiting for it (see :meth:`wait_ready`).

        ``env`` adds to the server's environment, which its kernels inherit.
        """
        self._extra_env = dict(env or {})
        for name in ("home", "config", "data", "ipython", "matplotlib", "workspaces"):
            (self.home / name).mkdir(parents=True, exist_ok=True)
        self.runtime_dir.mkdir(parents=True, exist_ok=True)
        self.runtime_dir.chmod(0o700)
        settings = self.home / "settings"
        for relpath, values in LAB_SETTINGS.items():
            path = settings / relpath
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))
        self.port = self.port or free_port()
        cmd = [
            sys.executable, "-m", "mlops_kit.cli", "lab", f"--port={self.port}", "--no-browser",
            "--",
            f"--IdentityProvider.token={self.token}",
            "--ServerApp.disable_check_xsrf=False",
            f"--LabApp.workspaces_dir={self.home / 'workspaces'}",
            f"--LabApp.user_settings_dir={settings}",
            "--LabApp.expose_app_in_browser=True",
            "--LabApp.extension_manager=readonly",  # never asks PyPI
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ]  # fmt: skip
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                cmd,
                cwd=self.root,
                env=self.environment(env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    # -- HTTP --------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        """A browser URL that logs in with the token."""
        return f"{self.base_url}/{path.lstrip('/')}?token={self.token}"

    def api(self, method: str, path: str, timeout: float = 30) -> httpx.Response:
        """A REST API call with the token (token-authenticated calls need no XSRF cookie)."""
        return httpx.request(
            method,
            f"{self.base_url}/api/{path.lstrip('/')}",
            headers={"Authorization": f"token {self.token}"},
            timeout=timeout,
            trust_env=False,  # loopback: never through a proxy from the environment
        )

    def wait_ready(self, timeout: float = 60) -> None:
        """Block until ``/api/status`` answers; raise with the log's tail if it never does."""
        deadline = time.monotonic() + timeout
        retries = 2
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                # The port was free when picked, but another process may have taken it since.
                if self.proc is not None and retries and "already in use" in self.log_tail():
                    retries -= 1
                    self.port = free_port()
                    self.start(self._extra_env)
                    continue
                raise RuntimeError(f"jupyter lab exited early:\n{self.log_tail()}")
            try:
                if self.api("GET", "status", timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"jupyter lab not ready after {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.is_file():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    # -- shutdown ----------------------------------------------------------------------------

    def kernels(self) -> dict[int, list[str]]:
        """Kernel processes by pid with their argv: those naming a file in our runtime dir."""
        marker = str(self.runtime_dir).encode()
        found = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if marker in cmdline:
                found[int(entry.name)] = [a.decode(errors="replace") for a in cmdline.split(b"\0")]
        return found

    def kernel_pids(self) -> list[int]:
        """Pids of the kernels still running (see :meth:`kernels`)."""
        return sorted(self.kernels())

    def stop(self, timeout: float = 20) -> list[int]:
        """Shut kernels down, stop the server, kill leftovers; return the pids that needed a kill.

        Safe to call twice and when the server never came up.
        """
        if self.proc is None:
            return []
        if self.proc.poll() is None:
            try:
                for kernel in self.api("GET", "kernels", timeout=5).json():
                    self.api("DELETE", f"kernels/{kernel['id']}", timeout=timeout)
                self.api("POST", "shutdown", timeout=5)
            except (httpx.HTTPError, ValueError):
                pass  # the kills below still happen
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout)
        killed = []
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                continue
        for pid in self.kernel_pids():
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            except ProcessLookupError:
                pass
        if self.proc.poll() is None:
            self.proc.wait(5)
        return killed


# -- the browser -----------------------------------------------------------------------------


def launch_chromium(
    playwright: Playwright, profile: Path, home: Path, **options: Any
) -> BrowserContext:
    """Headless Debian Chromium with a fresh profile in ``profile`` and ``$HOME`` in ``home``."""
    home.mkdir(parents=True, exist_ok=True)
    return playwright.chromium.launch_persistent_context(
        str(profile),
        executable_path=str(CHROMIUM),
        headless=True,
        args=CHROMIUM_ARGS,
        env={**os.environ, "HOME": str(home)},
        viewport={"width": 1400, "height": 1100},
        **options,
    )


def wait_for_kernel(page: Page, timeout: float = 60) -> str:
    """Wait until the current notebook's kernel is connected and idle; its display name."""
    page.wait_for_function(
        """() => {
            const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
            const kernel = w && w.sessionContext && w.sessionContext.session
                && w.sessionContext.session.kernel;
            return !!kernel && kernel.connectionStatus === 'connected'
                && kernel.status === 'idle';
        }""",
        timeout=timeout * 1000,
        polling=200,
    )
    script = "() => window.jupyterapp.shell.currentWidget.sessionContext.kernelDisplayName"
    return str(page.evaluate(script))


def open_notebook(page: Page, lab: JupyterLab, name: str, timeout: float = 60) -> str:
    """Open ``name`` (relative to the server root) and wait for its kernel; the kernel's name."""
    page.goto(lab.url(f"lab/tree/{name}"), timeout=timeout * 1000)
    page.locator(".jp-NotebookPanel").first.wait_for(timeout=timeout * 1000)
    return wait_for_kernel(page, timeout)


# Summarizes the notebook: how many code cells ran, and the first error output, if any.
_PROGRESS_JS = """() => {
    const w = window.jupyterapp.shell.currentWidget;
    const kernel = w.sessionContext.session && w.sessionContext.session.kernel;
    const cells = Array.from(w.content.model.cells).filter(c => c.type === 'code');
    let error = null;
    for (const [i, cell] of cells.entries()) {
        for (const out of cell.outputs.toJSON()) {
            if (out.output_type === 'error' && error === null) {
                error = {cell: i, ename: out.ename, evalue: out.evalue};
            }
        }
    }
    return {
        ran: cells.filter(c => c.executionCount !== null).length,
        total: cells.length,
        idle: !!kernel && kernel.status === 'idle',
        busy: cells.some(c => c.executionState === 'running'),
        error: error,
    };
}"""


def run_all_cells(page: Page, timeout: float = 120) -> dict[str, Any]:
    """Run > Run All Cells from the menu bar, then wait until every code cell has run.

    Raises AssertionError naming the first cell that failed, TimeoutError if cells are still
    running after ``timeout`` seconds.
    """
    page.locator(".lm-MenuBar-item").get_by_text("Run", exact=True).click()
    page.locator(".lm-Menu").get_by_role("menuitem", name="Run All Cells", exact=True).click()
    deadline = time.monotonic() + timeout
    progress: dict[str, Any] = {}
    while time.monotonic() < deadline:
        progress = page.evaluate(_PROGRESS_JS)
        if progress["error"] is not None:
            raise AssertionError(f"a notebook cell failed: {progress['error']}")
        if progress["ran"] == progress["total"] and progress["idle"] and not progress["busy"]:
            return progress
        time.sleep(0.25)
    raise TimeoutError(f"cells still running after {timeout:.0f} s: {progress}")

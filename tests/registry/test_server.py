"""The registry served by a real ``mlflow server`` on loopback (one per module: it costs ~5 s)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from mlops_kit.errors import RegistryError
from mlops_kit.project import Project
from mlops_kit.registry import server as registry_server
from tests.support import mlflow_globals_restored, write_project

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    """A project with its registry server running; stopped (whole group) however tests end."""
    root = tmp_path_factory.mktemp("registry-server")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        project = Project.load(write_project(root), state_dir=root / ".mlops")
    with mlflow_globals_restored():
        try:
            info = registry_server.start(project)
            print(f"\nregistry server ready in {info.start_seconds:.2f} s (new SQLite store)")
            yield project, info
        finally:
            registry_server.stop(project)


def test_start_writes_state_and_answers(server) -> None:
    project, info = server
    folder = project.state_dir / "registry-server"
    recorded = json.loads((folder / "server.json").read_text())
    assert recorded["pid"] == info.pid and recorded["port"] == info.port
    assert (folder / "server.log").is_file()
    key = folder / "webhook-secrets.key"
    assert key.stat().st_mode & 0o777 == 0o600
    assert info.url == f"http://127.0.0.1:{info.port}"
    assert info.backend_uri == f"sqlite:///{project.state_dir / 'mlflow.db'}"
    assert registry_server.status(project) == info
    # its own session: the pid leads a group that holds the uvicorn worker too
    assert os.getpgid(info.pid) == info.pid
    assert len(registry_server.group_members(info.pid)) >= 2
    assert info.start_seconds is not None and info.start_seconds < 60


def test_ensure_running_reuses_the_live_server(server) -> None:
    project, info = server
    assert registry_server.ensure_running(project) == info.url
    assert registry_server.ensure_running(project) == info.url
    assert registry_server.status(project).pid == info.pid
    with pytest.raises(RegistryError, match="already runs"):
        registry_server.start(project)


def test_model_logged_through_the_server_stays_local(server) -> None:
    from mlops_kit.train.training import load_dataset, train_and_register, training_params

    project, info = server
    served = registry_server.served(project)
    assert served.tracking_uri == info.url
    result = train_and_register(served, load_dataset("iris"), training_params(n_estimators=5))
    uri = served.client.get_model_version_download_uri(result.model_name, result.version)
    parsed = urlparse(uri)
    assert parsed.scheme in ("", "file")
    path = Path(unquote(parsed.path))
    assert path.is_relative_to(project.state_dir / "artifacts")
    assert (path / "MLmodel").is_file()


def test_nobody_without_the_toolkits_credentials_reaches_the_registry(server) -> None:
    import httpx

    project, info = server
    folder = project.state_dir / "registry-server"
    assert (folder / "admin-password").stat().st_mode & 0o777 == 0o600
    assert (folder / "basic-auth.ini").stat().st_mode & 0o777 == 0o600
    api = f"{info.url}/api/2.0/mlflow"
    alias = {"name": project.model_name, "alias": "production", "version": "1"}
    with httpx.Client(trust_env=False, timeout=10) as http:
        assert http.get(f"{info.url}/health").status_code == 200
        assert http.post(f"{api}/registered-models/alias", json=alias).status_code == 401
        assert http.get(f"{api}/webhooks/list").status_code == 401
        assert http.get(f"{api}/registered-models/search").status_code == 401
        wrong = http.get(f"{api}/registered-models/search", auth=("mlops-kit", "guess"))
        assert wrong.status_code == 401
        good = http.get(
            f"{api}/registered-models/search", auth=registry_server.credentials(project)
        )
        assert good.status_code == 200


def test_stop_leaves_no_process_and_is_idempotent(server) -> None:
    project, info = server
    members = registry_server.group_members(info.pid)
    assert info.pid in members
    assert registry_server.stop(project) is True
    assert registry_server.group_members(info.pid) == []
    for pid in members:
        assert not Path(f"/proc/{pid}").exists() or _zombie(pid)
    assert not (project.state_dir / "registry-server" / "server.json").exists()
    assert registry_server.status(project) is None
    assert registry_server.stop(project) is False


def test_stale_state_file_is_not_a_server(tmp_path: Path) -> None:
    project = Project.load(state_dir=tmp_path / ".mlops")
    folder = registry_server.server_dir(project)
    folder.mkdir(parents=True)
    dead = _dead_pid()
    (folder / "server.json").write_text(
        json.dumps(
            {
                "pid": dead,
                "port": 1,
                "backend_uri": "sqlite:///x",
                "artifact_root": "file:///x",
                "log": "x",
                "started_at": 0.0,
            }
        )
    )
    assert registry_server.status(project) is None
    assert registry_server.stop(project) is False
    assert not (folder / "server.json").exists()


def _zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] in ("Z", "X")


def _dead_pid() -> int:
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_only_the_embedded_registry_is_served(tmp_path: Path) -> None:
    from mlops_kit.errors import ConfigError

    project = Project.load(state_dir=tmp_path / ".mlops", registry_uri="https://mlflow.example.com")
    with pytest.raises(ConfigError, match="embedded SQLite registry"):
        registry_server.ensure_running(project)
    assert not registry_server.server_dir(project).exists()


def test_failed_start_leaves_nothing_running(tmp_path: Path) -> None:
    project = Project.load(state_dir=tmp_path / ".mlops")
    with pytest.raises(RegistryError, match="did not answer"):
        registry_server.start(project, timeout=0.5)
    assert _processes_mentioning(str(project.state_dir)) == []
    assert not (registry_server.server_dir(project) / "server.json").exists()
    assert registry_server.stop(project) is False


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if text.encode() in cmdline and not _zombie(int(entry.name)):
                found.append(int(entry.name))
    return found

"""The registry on a real PostgreSQL (``registry_uri: postgresql://...``), end to end and loaded.

The server is the session's PostgreSQL on loopback (``tests/support/postgres.py``); each test
gets a fresh database. Figures the drills print are quoted in ``docs/postgres.md``.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from mlops_kit.errors import MissingDependencyError, RegistryError, RegistryUnreachable
from mlops_kit.process import free_ports
from mlops_kit.project import Project
from mlops_kit.registry import database
from mlops_kit.registry import server as registry_server
from mlops_kit.registry.client import Registry
from mlops_kit.train.training import load_dataset, train_and_register, training_params
from tests.support import mlflow_globals_restored, write_project
from tests.support.postgres import register_versions

WRITERS = 16
REGISTRATIONS = 10
WRITER_IMPORTS = ["mlops_kit.project", "mlops_kit.train.training", "mlflow", "mlflow.sklearn",
                  "mlflow.models", "sklearn.ensemble"]  # fmt: skip


def pg_project(root: Path, url: str) -> Project:
    return Project.load(write_project(root, registry_uri=url), state_dir=root / "state")


# -- without a server -------------------------------------------------------------------------


def test_uris_name_the_driver_of_the_extra_and_hide_the_password():
    url = "postgresql://ml:s3cret@db.example:5433/registry?sslmode=require"
    assert database.is_postgres(url) and database.is_postgres("postgres://h/db")
    assert not database.is_postgres("sqlite:///x.db") and not database.is_postgres(None)
    assert database.sqlalchemy_uri(url).startswith("postgresql+psycopg2://ml:s3cret@")
    assert database.sqlalchemy_uri("postgresql+psycopg://h/db") == "postgresql+psycopg://h/db"
    assert database.sqlalchemy_uri("sqlite:///x.db") == "sqlite:///x.db"
    assert database.redact(url) == "postgresql://ml:***@db.example:5433/registry?sslmode=require"
    assert database.redact("postgresql://h/db") == "postgresql://h/db"


def test_an_unreachable_database_is_one_line_without_the_password(tmp_path):
    (port,) = free_ports("127.0.0.1")  # nothing listens there
    project = pg_project(tmp_path, f"postgresql://ml:s3cret@127.0.0.1:{port}/registry")
    began = time.monotonic()
    with mlflow_globals_restored(), pytest.raises(RegistryUnreachable) as info:
        project.client  # noqa: B018 - the first use connects
    message = str(info.value)
    assert time.monotonic() - began < 10  # MLflow alone retries for about 100 s
    assert "s3cret" not in message and "\n" not in message
    assert f"ml:***@127.0.0.1:{port}/registry" in message and "refused" in message


def test_a_missing_driver_names_the_postgres_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "psycopg2", None)  # as if psycopg2 were not installed
    project = pg_project(tmp_path, "postgresql://ml:s3cret@127.0.0.1:1/registry")
    with mlflow_globals_restored(), pytest.raises(MissingDependencyError) as info:
        project.client  # noqa: B018
    assert "pip install 'mlops-kit[postgres]'" in str(info.value)
    assert "s3cret" not in str(info.value)


# -- on a real PostgreSQL ---------------------------------------------------------------------


@pytest.mark.slow
def test_train_register_and_move_aliases_on_postgres(tmp_path, postgres_url):
    project = pg_project(tmp_path, postgres_url)
    data = load_dataset("wine")
    with mlflow_globals_restored():
        first = train_and_register(project, data, training_params(n_estimators=5))
        second = train_and_register(project, data, training_params(n_estimators=6))
        registry = Registry(project)
        registry.set_alias("staging", first.version)
        registry.set_alias("production", first.version)
        registry.set_alias("staging", second.version)
        assert (first.version, second.version) == ("1", "2")
        assert registry.by_alias("staging").version == "2"
        assert registry.champion().version == "1"
        assert [v.version for v in registry.versions()] == ["2", "1"]
        assert registry.get(2).lineage["dataset"] == "wine"
        path = registry.local_path(2)
        assert path.is_relative_to(project.state_dir / "artifacts")
        assert registry.load_model(2).predict(data.X_test.head(2)).shape == (2,)
        registry.delete_alias("staging")
        assert registry.by_alias("staging") is None
    assert not (tmp_path / "mlruns").exists()  # nothing beside the state directory
    assert "***" in project._repr_html_() and postgres_url not in project._repr_html_()


@pytest.mark.slow
def test_registry_in_postgres_and_artifacts_in_s3(tmp_path, postgres_url, aws, monkeypatch):
    """The scale-out pair: versions in PostgreSQL, model files in a bucket (moto on loopback)."""
    monkeypatch.delenv("MLFLOW_S3_ENDPOINT_URL", raising=False)  # the standard AWS variables only
    aws.client("s3").create_bucket(Bucket="ml-models")
    config = write_project(
        tmp_path, registry_uri=postgres_url, artifact_store="s3://ml-models/team"
    )
    project = Project.load(config, state_dir=tmp_path / "state")
    with mlflow_globals_restored():
        result = train_and_register(project, load_dataset("iris"), training_params(n_estimators=3))
        uri = project.client.get_model_version_download_uri(project.model_name, result.version)
    assert uri.startswith("s3://ml-models/team/"), uri
    listed = aws.client("s3").list_objects_v2(Bucket="ml-models", Prefix="team/")["Contents"]
    assert any(item["Key"].endswith("/MLmodel") for item in listed)
    assert not (project.state_dir / "artifacts").exists()


@pytest.mark.slow
def test_a_wrong_password_is_refused_in_one_line(tmp_path, postgres, postgres_url):
    wrong = postgres_url.replace(f":{postgres.password}@", ":not-the-password@")
    project = pg_project(tmp_path, wrong)
    with mlflow_globals_restored(), pytest.raises(RegistryUnreachable) as info:
        project.client  # noqa: B018
    message = str(info.value)
    assert "password authentication failed" in message and "not-the-password" not in message
    assert "\n" not in message


@pytest.mark.slow
def test_a_user_who_may_not_create_tables_gets_one_line(tmp_path, postgres, postgres_url):
    """PostgreSQL 15 lets only the database owner create tables in ``public`` by default."""
    import contextlib
    import secrets

    role = f"reader_{secrets.token_hex(4)}"  # roles belong to the cluster, not the database
    with contextlib.closing(postgres.connect()) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'r3ader'")
    url = postgres_url.replace(f"mlops:{postgres.password}@", f"{role}:r3ader@")
    project = pg_project(tmp_path, url)
    with mlflow_globals_restored(), pytest.raises(RegistryError) as info:
        project.client  # noqa: B018
    message = str(info.value)
    assert "permission denied" in message and f"{role}:***@" in message
    assert "r3ader" not in message and "\n" not in message


@pytest.mark.slow
def test_the_password_can_stay_out_of_the_project_file(tmp_path, postgres, monkeypatch):
    """libpq's PGPASSWORD (or ~/.pgpass) supplies it; mlops.yaml names only user and host."""
    url = postgres.create_database().replace(f":{postgres.password}@", "@")
    monkeypatch.setenv("PGPASSWORD", postgres.password)
    project = pg_project(tmp_path, url)
    with mlflow_globals_restored():
        assert project.client.search_registered_models() == []


@pytest.mark.slow
def test_the_registry_server_serves_postgres_and_keeps_artifacts_local(tmp_path, postgres_url):
    project = pg_project(tmp_path, postgres_url)
    with mlflow_globals_restored():
        try:
            info = registry_server.start(project)
            print(f"\nregistry server on a new PostgreSQL database ready in {info.start_seconds} s")
            served = registry_server.served(project)
            result = train_and_register(
                served, load_dataset("iris"), training_params(n_estimators=3)
            )
            Registry(served).set_alias("staging", result.version)
            uri = served.client.get_model_version_download_uri(result.model_name, result.version)
            path = Path(unquote(urlparse(uri).path))
            assert path.is_relative_to(project.state_dir / "artifacts")
            # the same version, read straight from the database
            assert Registry(project).by_alias("staging").version == result.version
            # the password is in neither the command line nor the server's record
            password = urlparse(postgres_url).password
            for pid in registry_server.group_members(info.pid):
                assert password not in " ".join(registry_server.command_line(pid) or [])
            record = (registry_server.server_dir(project) / "server.json").read_text()
            assert password not in record and "***@127.0.0.1" in record
        finally:
            registry_server.stop(project)


@pytest.mark.slow
@pytest.mark.timeout(900)  # 16 processes importing MLflow on 2 shared cores
def test_concurrent_writers_register_every_version_once(tmp_path, postgres_url):
    """16 processes open a new database at once, then each registers 10 versions: 160, none lost."""
    project = pg_project(tmp_path, postgres_url)
    config = str(tmp_path / "mlops.yaml")
    # Fresh processes, forked from one that imported MLflow and scikit-learn once: on 2 cores,
    # 16 processes each importing them took longer than the drill itself. None has touched a
    # database before the barrier (a forked connection would be shared).
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["tests.support.postgres", *WRITER_IMPORTS])
    start, results = ctx.Barrier(WRITERS + 1), ctx.Queue()
    writers = [
        ctx.Process(target=register_versions, args=(config, i, REGISTRATIONS, start, results))
        for i in range(WRITERS)
    ]
    for writer in writers:
        writer.start()
    try:
        start.wait(timeout=300)  # every writer has imported MLflow and scikit-learn
        reports = [results.get(timeout=540) for _ in writers]
    finally:
        for writer in writers:
            writer.join(30)
            if writer.is_alive():
                writer.kill()
    failed = [r for r in reports if len(r) == 2]
    assert not failed, failed
    seconds = max(r[3] for r in reports) - min(r[2] for r in reports)
    got = sorted(v for r in reports for v in r[1])
    total = WRITERS * REGISTRATIONS
    print(
        f"\n{WRITERS} writers x {REGISTRATIONS} registrations on PostgreSQL (first use of a new "
        f"database included): {len(got)} versions, {len(set(got))} distinct, in {seconds:.1f} s "
        f"({len(got) / seconds:.1f} registrations/s, {os.cpu_count()} cores)"
    )
    assert got == list(range(1, total + 1))
    with mlflow_globals_restored():
        versions = Registry(project).client.search_model_versions(
            f"name = '{project.model_name}'", max_results=1000
        )
        assert len(versions) == total and len({v.run_id for v in versions}) == total
        writers_of = {(v.tags["drill.writer"], str(v.version)) for v in versions}
    expected = {(str(r[0]), str(v)) for r in reports for v in r[1]}
    assert writers_of == expected

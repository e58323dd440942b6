"""A real PostgreSQL for the tests: ``initdb`` into a temporary directory, ``postgres`` on loopback.

Debian's ``postgresql`` package (``.ci/run`` installs it) puts the binaries under
``/usr/lib/postgresql/<version>/bin``, not on ``PATH``; :func:`find_bin_dir` looks there too.
``initdb`` and ``postgres`` refuse to run as root, so as root they run as the ``postgres`` user
the package creates (``runuser -u postgres --``) in a directory that user owns. The server
listens on 127.0.0.1 only, on a free port, without a Unix socket; its superuser has a password
(scram-sha-256), so the URLs the tests use carry one, as a real deployment's would. The Debian
cluster service is neither used nor started.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mlops_kit.process import free_ports, spawn, stop_groups, wait_ready

HOST = "127.0.0.1"
SUPERUSER = "mlops"
OS_USER = "postgres"
"""The unprivileged account Debian's package creates; the server runs as it when we are root."""
MISSING = (
    "PostgreSQL is not installed: no initdb on PATH or under /usr/lib/postgresql/*/bin. "
    "`.ci/run` installs the Debian package `postgresql` (apt-get install postgresql)"
)


def find_bin_dir() -> Path | None:
    """The directory holding ``initdb``, ``postgres`` and ``pg_isready``, newest version first."""
    found = [Path(p).parent for p in sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))]
    found.sort(key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0, reverse=True)
    on_path = shutil.which("initdb")
    if on_path is not None:
        found.append(Path(on_path).resolve().parent)
    for directory in found:
        if all((directory / name).is_file() for name in ("initdb", "postgres", "pg_isready")):
            return directory
    return None


@dataclass(frozen=True)
class PostgresServer:
    """A running PostgreSQL: where it listens and how to reach it as its superuser."""

    port: int
    password: str
    bin_dir: Path
    root: Path
    pid: int

    def url(self, database: str = "postgres") -> str:
        """A SQLAlchemy/MLflow URL of ``database`` with the superuser's credentials."""
        return f"postgresql://{SUPERUSER}:{self.password}@{HOST}:{self.port}/{database}"

    def connect(self, database: str = "postgres"):  # type: ignore[no-untyped-def]
        """A psycopg2 connection in autocommit mode (CREATE DATABASE needs it)."""
        import psycopg2

        conn = psycopg2.connect(self.url(database), connect_timeout=10)
        conn.autocommit = True
        return conn

    def create_database(self, prefix: str = "t") -> str:
        """A fresh, empty database; its URL."""
        name = f"{prefix}_{secrets.token_hex(6)}"
        with contextlib.closing(self.connect()) as conn, conn.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


@contextlib.contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """Start PostgreSQL on a free loopback port with a new data directory; remove both on exit."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise RuntimeError(MISSING)
    as_root = os.geteuid() == 0
    try:
        owner = pwd.getpwnam(OS_USER) if as_root else None
    except KeyError:
        raise RuntimeError(f"no user {OS_USER!r} to run PostgreSQL as; {MISSING}") from None
    prefix = ["runuser", "-u", OS_USER, "--"] if as_root else []
    # Not under pytest's base directory: it is 0700 and root's, which the postgres user
    # could not enter.
    root = Path(tempfile.mkdtemp(prefix="mlops-kit-pg-"))
    try:
        data = root / "data"
        pwfile = root / "pwfile"
        password = secrets.token_urlsafe(16)
        pwfile.write_text(password + "\n")
        if owner is not None:
            for path in (root, pwfile):
                os.chown(path, owner.pw_uid, owner.pw_gid)
        initdb = [
            str(bin_dir / "initdb"), "-D", str(data), "-U", SUPERUSER, f"--pwfile={pwfile}",
            "--auth-host=scram-sha-256", "--auth-local=peer", "-E", "UTF8", "--locale=C.UTF-8",
            "--no-sync",
        ]  # fmt: skip
        done = subprocess.run(prefix + initdb, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed (exit {done.returncode}): {done.stderr[-2000:]}")
        pwfile.unlink()
        (port,) = free_ports(HOST)
        server = [
            str(bin_dir / "postgres"), "-D", str(data), "-p", str(port),
            "-c", f"listen_addresses={HOST}", "-c", "unix_socket_directories=",
            # 16 writers, each with a tracking and a registry engine (pools of up to 15).
            "-c", "max_connections=300", "-c", "fsync=off", "-c", "synchronous_commit=off",
            "-c", "full_page_writes=off",
        ]  # fmt: skip
        log = root / "postgres.log"
        proc = spawn(prefix + server, log=log, what=f"PostgreSQL on port {port}")
        instance = PostgresServer(port, password, bin_dir, root, proc.pid)
        try:
            isready = [str(bin_dir / "pg_isready"), "-q", "-h", HOST, "-p", str(port)]
            wait_ready(
                lambda: subprocess.run(isready, check=False, timeout=10).returncode == 0,
                pid=proc.pid,
                timeout=60,
                interval=0.2,
                log=log,
                what="PostgreSQL",
            )
            yield instance
        finally:
            # SIGTERM to the whole group: the postmaster, its backends and runuser.
            stop_groups([proc.pid], grace=20, what="PostgreSQL")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def register_versions(config: str, writer: int, count: int, start, results) -> None:  # type: ignore[no-untyped-def]
    """A writer process of the concurrency drill: ``count`` trained and registered versions.

    Imports first, then waits at the ``start`` barrier with the other writers, so that all
    of them open the (new) database at once: first use, migrations and registrations race.
    Puts ``(writer, versions, began, ended)`` on ``results``, or ``(writer, error)``.
    """
    import time

    from mlops_kit.project import Project
    from mlops_kit.train.training import load_dataset, train_and_register, training_params

    data = load_dataset("iris")
    try:
        start.wait(timeout=300)
        began = time.time()
        project = Project.load(config)
        versions = []
        for _ in range(count):
            result = train_and_register(project, data, training_params(n_estimators=2))
            project.client.set_model_version_tag(
                project.model_name, result.version, "drill.writer", str(writer)
            )
            versions.append(int(result.version))
        results.put((writer, versions, began, time.time()))
    except BaseException as exc:  # every writer must report, or the drill would wait
        results.put((writer, f"{type(exc).__name__}: {exc}"))

"""The registry on a PostgreSQL server: the driver, a reachable database, MLflow's schema once.

``registry_uri: postgresql://user:password@host:port/db`` in the project file puts runs, the
registered model, its versions, tags and aliases in that database; artifacts stay where the
project keeps them. Before the first MLflow client of a process touches it, :func:`prepare`

- checks the driver is installed (else :class:`~mlops_kit.errors.MissingDependencyError`
  naming the ``postgres`` extra);
- connects once with a short timeout (else one line of
  :class:`~mlops_kit.errors.RegistryUnreachable`, password redacted) — MLflow itself would
  retry for about 100 s and then print a wall of traceback;
- creates or upgrades MLflow's tables under a PostgreSQL advisory lock. MLflow migrates an
  empty database on first use without any lock, so writers starting together on a new
  database would each run the migrations and fail on each other's tables. The advisory lock
  is held by the database server, so it serializes first use across processes *and* machines,
  which a file lock could not.

A bare ``postgresql://`` is handed to MLflow as ``postgresql+psycopg2://``: SQLAlchemy 2.1
maps the bare scheme to psycopg 3, while the ``postgres`` extra installs psycopg2.
"""

from __future__ import annotations

import logging
from urllib.parse import urlparse

from mlops_kit.errors import MissingDependencyError, RegistryError, RegistryUnreachable

logger = logging.getLogger(__name__)

SCHEMES = ("postgresql", "postgres")
"""URI schemes (before any ``+driver``) of a PostgreSQL registry."""
DRIVER = "psycopg2"
"""The driver the ``postgres`` extra installs."""
CONNECT_TIMEOUT = 5
"""Seconds the reachability check waits for the server before giving up."""
MIGRATION_LOCK = 0x6D6C6F7073  # "mlops": the advisory lock key of MLflow's migrations

_prepared: set[str] = set()


def is_postgres(uri: str | None) -> bool:
    """Whether ``uri`` names a PostgreSQL database (any ``postgresql+driver://`` too)."""
    return uri is not None and urlparse(uri).scheme.split("+")[0] in SCHEMES


def sqlalchemy_uri(uri: str) -> str:
    """``uri`` as MLflow gets it: a scheme without a driver names psycopg2; others unchanged."""
    parsed = urlparse(uri)
    if parsed.scheme in SCHEMES:
        return parsed._replace(scheme=f"postgresql+{DRIVER}").geturl()
    return uri


def redact(uri: str) -> str:
    """``uri`` with its password, if any, replaced by ``***`` (user, host and port kept)."""
    parsed = urlparse(uri)
    if parsed.password is None:
        return uri
    host = parsed.netloc.rpartition("@")[2]
    return parsed._replace(netloc=f"{parsed.username}:***@{host}").geturl()


def prepare(uri: str | None) -> None:
    """Make a PostgreSQL ``uri`` ready for MLflow clients: driver, connection, schema (once).

    Nothing happens for other URIs (or None), nor for one this process prepared already. Safe
    to call from any number of processes at once: one migrates, the others wait and find it
    done. Errors quote ``uri`` as given, password redacted.
    """
    if uri is None or not is_postgres(uri) or uri in _prepared:
        return
    import sqlalchemy
    from sqlalchemy.pool import NullPool

    url = sqlalchemy_uri(uri)
    try:
        engine = sqlalchemy.create_engine(
            url, poolclass=NullPool, connect_args={"connect_timeout": CONNECT_TIMEOUT}
        )
    except ModuleNotFoundError as exc:
        raise MissingDependencyError(exc.name or DRIVER, "postgres") from None
    try:
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK})
            try:
                _migrate(url)
            finally:
                conn.execute(
                    sqlalchemy.text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK}
                )
    except sqlalchemy.exc.OperationalError as exc:
        raise RegistryUnreachable(redact(uri), _reason(exc, uri)) from None
    except sqlalchemy.exc.DBAPIError as exc:  # e.g. no right to create tables in the schema
        raise RegistryError(
            f"could not create MLflow's tables in {redact(uri)}: {_reason(exc, uri)}"
        ) from None
    finally:
        engine.dispose()
    _prepared.add(uri)


def _migrate(url: str) -> None:
    """MLflow's own first-use step, done once: create its tables unless they all exist."""
    from mlflow.store.db import utils

    engine = utils.create_sqlalchemy_engine(url)
    try:
        if not utils._all_tables_exist(engine):
            logger.info("creating MLflow's tables in %s", redact(url))
            utils._initialize_tables(engine)
    finally:
        engine.dispose()


def _reason(exc: Exception, uri: str) -> str:
    """The driver's first line of complaint, without the password should it quote the URI."""
    text = str(getattr(exc, "orig", None) or exc).strip()
    line = next((part.strip() for part in text.splitlines() if part.strip()), "no answer")
    password = urlparse(uri).password
    return line.replace(password, "***") if password else line

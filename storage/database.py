"""The database, built from DATABASE_URL, and the two kinds of transaction.

SQLite (the default) serves one host: WAL lets readers run beside the one
writer, and every write transaction starts with BEGIN IMMEDIATE so two writers
queue on the busy timeout instead of deadlocking on a lock upgrade.
PostgreSQL serves any number of hosts from a connection pool.
"""

import contextlib
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

from peewee import Database, OperationalError, PostgresqlDatabase, SqliteDatabase
from playhouse.db_url import parse as parse_database_url
from playhouse.pool import MaxConnectionsExceeded, PooledPostgresqlDatabase, PooledSqliteDatabase

from settings import settings

SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "busy_timeout": 10_000,
    "foreign_keys": 1,
    "synchronous": "normal",
    "cache_size": -32_000,
}


def open_database(url: str, *, max_connections: int = 64) -> Database:
    """A pooled database for a sqlite:/// or postgresql:// URL."""
    scheme = urlparse(url).scheme
    if scheme == "sqlite":
        path = parse_database_url(url)["database"]
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        return PooledSqliteDatabase(
            path,
            pragmas=SQLITE_PRAGMAS,
            timeout=10,
            returning_clause=True,
            check_same_thread=False,
            max_connections=max_connections,
            stale_timeout=600,
        )
    if scheme in ("postgres", "postgresql"):
        return PooledPostgresqlDatabase(
            **parse_database_url(url),
            max_connections=max_connections,
            timeout=30,
            stale_timeout=600,
        )
    raise ValueError(f"DATABASE_URL must be sqlite:/// or postgresql://, not {scheme!r}")


database = open_database(settings.database_url)

if isinstance(database, SqliteDatabase):
    _WRITE, _READ = ("IMMEDIATE",), ("DEFERRED",)
elif isinstance(database, PostgresqlDatabase):
    # Reads take one snapshot, so a batch and its items always agree.
    _WRITE, _READ = (), ("REPEATABLE READ",)


@contextlib.contextmanager
def writing() -> Iterator[None]:
    """A connection and a write transaction, committed on success."""
    with database.connection_context(), database.atomic(*_WRITE):
        yield


@contextlib.contextmanager
def reading() -> Iterator[None]:
    """A connection and a consistent read-only view of the database."""
    with database.connection_context(), database.atomic(*_READ):
        yield


def is_sqlite() -> bool:
    return isinstance(database, SqliteDatabase)


def is_transient_failure(error: Exception) -> bool:
    """A failure that trying again shortly may not meet: the database busy or out of reach.

    SQLite reports a writer that waited out the busy timeout as "database is
    locked"; PostgreSQL reports lost or refused connections as operational
    errors; the pool gives up when every connection stays taken.
    """
    if isinstance(error, MaxConnectionsExceeded):
        return True
    if not isinstance(error, OperationalError):
        return False
    if is_sqlite():
        return any(word in str(error) for word in ("locked", "busy"))
    return True

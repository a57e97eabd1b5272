"""The database, built from DATABASE_URL, and the two kinds of transaction.

SQLite (the default) serves one host: WAL lets readers run beside the one
writer, and every write transaction starts with BEGIN IMMEDIATE so two writers
queue on the busy timeout instead of deadlocking on a lock upgrade.
PostgreSQL serves any number of hosts. Either way each process keeps a pool of
at most DATABASE_POOL_SIZE connections; a thread that finds them all in use
waits up to DATABASE_POOL_TIMEOUT seconds for one.
"""

import contextlib
import itertools
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlparse

from peewee import Database, OperationalError, PostgresqlDatabase, SqliteDatabase
from playhouse.db_url import parse as parse_database_url
from playhouse.pool import MaxConnectionsExceeded, PooledPostgresqlDatabase, PooledSqliteDatabase

from settings import settings

log = logging.getLogger(__name__)


class _SqliteDatabase(PooledSqliteDatabase):
    """SQLite that retries setting up a connection SQLite refused without waiting.

    Two connections opening a new file at once may both try to switch it to
    WAL; SQLite then answers one with "database is locked" at once rather than
    risk a deadlock on the busy timeout. Trying again shortly succeeds.
    """

    def _set_pragmas(self, conn) -> None:
        for attempt in itertools.count(1):
            try:
                return super()._set_pragmas(conn)
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) or attempt == _PRAGMA_ATTEMPTS:
                    raise
                time.sleep(0.05)


_PRAGMA_ATTEMPTS = 100

SQLITE_PRAGMAS = {
    "busy_timeout": 10_000,
    "journal_mode": "wal",
    "foreign_keys": 1,
    "synchronous": "normal",
    "cache_size": -32_000,
}


def open_database(url: str, *, pool_size: int, pool_timeout: float) -> Database:
    """A pooled database for a sqlite:/// or postgresql:// URL."""
    scheme = urlparse(url).scheme
    # A connection unused this long is closed rather than handed out again.
    pool = {"max_connections": pool_size, "timeout": pool_timeout, "stale_timeout": 600}
    if scheme == "sqlite":
        path = parse_database_url(url)["database"]
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        return _SqliteDatabase(
            path,
            pragmas=SQLITE_PRAGMAS,
            returning_clause=True,
            check_same_thread=False,
            **pool,
        )
    if scheme in ("postgres", "postgresql"):
        return PooledPostgresqlDatabase(**parse_database_url(url), **pool)
    raise ValueError(f"DATABASE_URL must be sqlite:/// or postgresql://, not {scheme!r}")


database = open_database(
    settings.database_url,
    pool_size=settings.database_pool_size,
    pool_timeout=settings.database_pool_timeout,
)

if isinstance(database, SqliteDatabase):
    _WRITE, _READ = ("IMMEDIATE",), ("DEFERRED",)
elif isinstance(database, PostgresqlDatabase):
    # Reads take one snapshot, so a batch and its items always agree.
    _WRITE, _READ = (), ("REPEATABLE READ",)

_commit_hooks = threading.local()


@contextlib.contextmanager
def writing() -> Iterator[None]:
    """A connection and a write transaction, committed on success.

    Calls registered with `after_commit` inside it run once it has committed.
    """
    hooks: list[Callable[[], None]] = []
    outer = getattr(_commit_hooks, "pending", None)
    _commit_hooks.pending = hooks if outer is None else outer
    try:
        with database.connection_context(), database.atomic(*_WRITE):
            yield
    finally:
        _commit_hooks.pending = outer
    if outer is None:
        for hook in hooks:
            try:
                hook()
            except Exception:
                log.exception("after-commit action failed")


def after_commit(hook: Callable[[], None]) -> None:
    """Run `hook` once the current write transaction has committed (at once outside one).

    A hook that fails is logged, not raised: the transaction it follows has
    already committed, and whoever needs the hook's effect must cover its loss.
    """
    pending = getattr(_commit_hooks, "pending", None)
    if pending is None:
        hook()
    else:
        pending.append(hook)


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

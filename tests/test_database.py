"""The connection pool and the after-commit hook of storage/database.py."""

import os
import sqlite3
import threading

import pytest
from playhouse.pool import MaxConnectionsExceeded, PooledSqliteDatabase

from storage.database import after_commit, open_database, writing
from storage.models import Batch


def test_after_commit_runs_once_the_transaction_has_committed():
    seen = []
    with writing():
        after_commit(lambda: seen.append(Batch.select().count()))
        assert seen == []
    assert seen == [0]


def test_after_commit_is_dropped_with_a_transaction_that_rolls_back():
    seen = []
    with pytest.raises(RuntimeError), writing():
        after_commit(lambda: seen.append("sent"))
        raise RuntimeError("refused")
    assert seen == []


def test_a_failing_after_commit_action_does_not_undo_or_fail_the_operation():
    def fails():
        raise ConnectionError("queue unreachable")

    with writing():
        after_commit(fails)


@pytest.fixture
def pool_of_one():
    database = open_database(os.environ["DATABASE_URL"], pool_size=1, pool_timeout=0.2)
    yield database
    database.close_all()


def in_other_thread(function):
    outcome = {}

    def run():
        try:
            outcome["value"] = function()
        except Exception as error:
            outcome["error"] = error

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    return outcome


def test_a_thread_finding_the_pool_in_use_gives_up_after_the_wait_timeout(pool_of_one):
    with pool_of_one.connection_context():
        outcome = in_other_thread(pool_of_one.connect)
    assert isinstance(outcome["error"], MaxConnectionsExceeded)


def test_sqlite_refusing_a_new_connection_at_once_is_asked_again(tmp_path, monkeypatch):
    refusals = iter([sqlite3.OperationalError("database is locked")])
    set_pragmas = PooledSqliteDatabase._set_pragmas

    def refused_once(self, conn):
        if (refusal := next(refusals, None)) is not None:
            raise refusal
        set_pragmas(self, conn)

    monkeypatch.setattr(PooledSqliteDatabase, "_set_pragmas", refused_once)
    database = open_database(f"sqlite:///{tmp_path}/new.db", pool_size=1, pool_timeout=1)
    with database.connection_context():
        assert database.execute_sql("PRAGMA journal_mode").fetchone() == ("wal",)
    assert next(refusals, None) is None
    database.close_all()

"""Throwaway databases: one for the whole suite, and fresh ones for tests that need their own.

Without TEST_POSTGRES_URL everything is SQLite files in temporary folders.
With it (`make test-postgres`), every database is a newly created, uniquely
named PostgreSQL database on that server, dropped afterwards; the URL names
an existing database to connect to for creating and dropping them.
"""

import os
import tempfile
import uuid
from urllib.parse import urlparse, urlunparse

import psycopg2


def server_url() -> str | None:
    return os.environ.get("TEST_POSTGRES_URL") or None


def create_database() -> str:
    """A new, empty database of the suite's kind; returns its URL."""
    server = server_url()
    if server is None:
        return f"sqlite:///{tempfile.mkdtemp(prefix='bulkreg-test-')}/bulkreg.db"
    name = f"bulkreg_test_{uuid.uuid4().hex[:12]}"
    _administer(server, f'CREATE DATABASE "{name}"')
    return urlunparse(urlparse(server)._replace(path=f"/{name}"))


def drop_database(url: str) -> None:
    """Drop a database `create_database` made, ending any session still on it."""
    server = server_url()
    if server is None or not url.startswith("postgres"):
        return
    name = urlparse(url).path.lstrip("/")
    _administer(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _administer(server: str, statement: str) -> None:
    connection = psycopg2.connect(server)
    try:
        # CREATE and DROP DATABASE cannot run inside a transaction.
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(statement)
    finally:
        connection.close()

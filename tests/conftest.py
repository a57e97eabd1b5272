"""Shared fixtures.

The suite runs against the database named by DATABASE_URL; without one it
makes a throwaway SQLite file. `make test-postgres` points it at a fresh
PostgreSQL database instead: the same tests, the other backend.
"""

import os
import tempfile

os.environ.setdefault(
    "DATABASE_URL", f"sqlite:///{tempfile.mkdtemp(prefix='bulkreg-test-')}/bulkreg.db"
)

import pytest
from starlette.testclient import TestClient

from storage.database import database
from storage.migrations import migrate
from storage.models import TABLES
from storage.queue import QUEUE_TABLES, huey
from tests.contract import check_response


@pytest.fixture(scope="session", autouse=True)
def schema():
    migrate()


@pytest.fixture(autouse=True)
def empty_tables(schema):
    yield
    with database.connection_context():
        for table in [*reversed(TABLES), *QUEUE_TABLES]:
            table.delete().execute()


class ContractClient(TestClient):
    """A test client that checks every response against openapi.yaml."""

    def request(self, *args, **kwargs):
        response = super().request(*args, **kwargs)
        check_response(response)
        return response


@pytest.fixture(scope="session")
def asgi_app():
    from app import app

    return app


@pytest.fixture
def client(asgi_app):
    with ContractClient(asgi_app) as test_client:
        yield test_client


def run_queued_jobs() -> int:
    """Run every job in the queue, as a consumer would; returns how many ran."""
    ran = 0
    with database.connection_context():
        while (task := huey.dequeue()) is not None:
            huey.execute(task)
            ran += 1
    return ran


@pytest.fixture
def process():
    return run_queued_jobs

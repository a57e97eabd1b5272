"""Shared fixtures.

The suite runs against a throwaway database of its own, never the one
DATABASE_URL names outside it: a SQLite file by default, a freshly created
PostgreSQL database with `make test-postgres` (tests/databases.py). The same
tests, either backend.
"""

import os

from tests.databases import create_database, drop_database

os.environ["DATABASE_URL"] = create_database()
# The in-process tests run jobs off the database queue; tests of the Redis
# queue set it for the processes they start.
os.environ.pop("HUEY_REDIS_URL", None)

import pytest
from starlette.testclient import TestClient

from storage.database import database
from storage.migrations import migrate
from storage.models import TABLES
from storage.queue import QUEUE_TABLES, huey
from tests.contract import check_response


def pytest_sessionfinish(session, exitstatus):
    database.close_all()
    drop_database(os.environ["DATABASE_URL"])


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

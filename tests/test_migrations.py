"""Schema migrations as deployments run them: `python -m storage.migrations`, from several hosts.

Each test gets a fresh database of the suite's kind (a SQLite file, or a new
PostgreSQL database with `make test-postgres`).
"""

import os
import subprocess
import sys
from datetime import date, datetime

import pytest

from storage.database import open_database
from storage.migrations import LATEST_VERSION
from storage.models import TABLES, Activity, Batch, BatchItem
from tests.databases import create_database, drop_database
from tests.live import ROOT


@pytest.fixture
def fresh_url():
    url = create_database()
    yield url
    drop_database(url)


def migrations(url: str, code: str = "main()") -> subprocess.Popen:
    """`python -m storage.migrations`, or other `code` run with its module imported.

    The process says "ready" once imported, then waits for a line on stdin:
    several are released together, so their migrations really overlap.
    """
    script = (
        "import sys\n"
        "from storage.migrations import main, migrate\n"
        "print('ready', flush=True)\n"
        "sys.stdin.readline()\n"
        f"{code}\n"
    )
    return subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": url},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def run_together(*processes: subprocess.Popen) -> list[str]:
    """Release the processes at once; the output of each, which must have succeeded."""
    for process in processes:
        assert process.stdout.readline() == "ready\n"
    for process in processes:
        process.stdin.write("go\n")
        process.stdin.flush()
    outputs = []
    for process in processes:
        output, _ = process.communicate(timeout=120)
        assert process.returncode == 0, output
        outputs.append(output)
    return outputs


def connect(url: str):
    return open_database(url, pool_size=1, pool_timeout=10)


def schema_versions(database) -> list[tuple]:
    return database.execute_sql("SELECT version FROM schema_version").fetchall()


def test_several_hosts_migrating_a_fresh_database_at_once_create_the_schema_once(fresh_url):
    outputs = run_together(*[migrations(fresh_url) for _ in range(4)])

    assert sum(f"from version 0 to {LATEST_VERSION}" in output for output in outputs) == 1
    assert sum("up to date" in output for output in outputs) == 3
    database = connect(fresh_url)
    with database.connection_context():
        assert schema_versions(database) == [(LATEST_VERSION,)]
        for model in TABLES:
            assert database.table_exists(model._meta.table_name)
    database.close_all()


# Rows as the first released schema (version 1) stored them, by its column names.
VERSION_1_ROWS = {
    "batch": [
        {
            "id": 7,
            "coordinator_id": "coord-119",
            "label": "March",
            "status": "partial",
            "total_items": 3,
            "completed": 1,
            "failed": 1,
            "pending": 1,
            "cancelled": 0,
            "version": 4,
            "submitted_at": "2026-03-25 08:00:00",
            "updated_at": "2026-03-25 08:02:14",
            "completed_at": None,
            "cancelled_at": None,
            "cancellation_reason": None,
            "lease_expires_at": "2026-03-25 08:07:14",
        }
    ],
    "batch_item": [
        {
            "batch_id": 7,
            "position": position,
            "mentor_id": f"mentor-{position}",
            "activity_type": "workshop",
            "activity_date": "2026-03-24",
            "duration_minutes": 45,
            "notes": "imported" if position == 1 else None,
            "status": status,
            "activity_id": 11 if status == "success" else None,
            "error_code": "future_date" if status == "failed" else None,
            "attempts": position,
            "repeats_earlier": False,
            "settled_at": None if status == "pending" else "2026-03-25 08:02:14",
        }
        for position, status in [(1, "success"), (2, "failed"), (3, "pending")]
    ],
    "activity": [
        {
            "id": 11,
            "mentor_id": "mentor-1",
            "activity_type": "workshop",
            "activity_date": "2026-03-24",
            "duration_minutes": 45,
            "notes": "imported",
            "created_at": "2026-03-25 08:02:14",
            "source_batch_id": 7,
            "source_position": 1,
        }
    ],
}


def test_upgrading_a_version_1_database_keeps_every_row(fresh_url):
    run_together(migrations(fresh_url, "migrate(target=1)"))
    database = connect(fresh_url)
    with database.connection_context():
        for table, rows in VERSION_1_ROWS.items():
            for row in rows:
                columns = ", ".join(row)
                values = ", ".join([database.param] * len(row))
                database.execute_sql(
                    f"INSERT INTO {table} ({columns}) VALUES ({values})", list(row.values())
                )

    run_together(migrations(fresh_url))

    with database.bind_ctx(TABLES), database.connection_context():
        assert schema_versions(database) == [(LATEST_VERSION,)]
        batch = Batch.get()
        items = list(BatchItem.select().order_by(BatchItem.position))
        activity = Activity.get()
    database.close_all()
    assert (batch.id, batch.label, batch.status, batch.version) == (7, "March", "partial", 4)
    assert (batch.completed, batch.failed, batch.pending, batch.total_items) == (1, 1, 1, 3)
    assert batch.submitted_at == datetime(2026, 3, 25, 8, 0, 0)
    assert batch.lease_expires_at == datetime(2026, 3, 25, 8, 7, 14)
    assert [(i.position, i.status, i.attempts) for i in items] == [
        (1, "success", 1),
        (2, "failed", 2),
        (3, "pending", 3),
    ]
    assert [(i.activity_id, i.error_code, i.notes) for i in items] == [
        (11, None, "imported"),
        (None, "future_date", None),
        (None, None, None),
    ]
    assert items[0].activity_date == date(2026, 3, 24)
    assert (activity.id, activity.mentor_id, activity.source_position) == (11, "mentor-1", 1)

"""The run's own view of the throwaway SQLite database: seeding and watching items settle.

Seeding writes rows with SQL, straight into the tables of storage/models.py,
because 100,000 batches through the API would take longer than the run.
Settling is watched by polling the items' status: a commit is seen within
one poll interval of the moment any client could see it.
"""

import sqlite3
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

POLL_SECONDS = 0.002

# One completed batch per row, each with one successful item and its
# activity; submitted one second apart, ending a day before `newest`.
_SEED = [
    """
    INSERT INTO batch (id, coordinator_id, label, status, total_items, completed, failed,
        pending, cancelled, version, submitted_at, updated_at, completed_at)
    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :count)
    SELECT i, 'coord-' || (i % 97), 'Seeded batch ' || i, 'completed', 1, 1, 0, 0, 0, 2,
        datetime(:start, '+' || i || ' seconds'), datetime(:start, '+' || i || ' seconds'),
        datetime(:start, '+' || i || ' seconds')
    FROM n
    """,
    """
    INSERT INTO activity (id, mentor_id, activity_type, activity_date, duration_minutes, notes,
        created_at, source_batch_id, source_position)
    SELECT id, 'seed-mentor-' || id, 'peer_session', date(submitted_at), 60, 'Seeded',
        submitted_at, id, 1
    FROM batch WHERE id <= :count
    """,
    """
    INSERT INTO batch_item (batch_id, position, mentor_id, activity_type, activity_date,
        duration_minutes, notes, status, activity_id, attempts, repeats_earlier, settled_at)
    SELECT id, 1, 'seed-mentor-' || id, 'peer_session', date(submitted_at), 60, 'Seeded',
        'success', id, 1, 0, submitted_at
    FROM batch WHERE id <= :count
    """,
]


# Newer schemas keep a per-coordinator, per-status count of batches beside them.
_HAS_TALLY = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'batch_tally'"
_RETALLY = """
    INSERT OR REPLACE INTO batch_tally (coordinator_id, status, batches)
    SELECT coordinator_id, status, COUNT(*) FROM batch GROUP BY coordinator_id, status
"""


class SchemaMismatch(RuntimeError):
    """The target's tables are not the ones this benchmark seeds and watches."""


def connect(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path, isolation_level=None, timeout=30)
    connection.execute("PRAGMA busy_timeout = 30000")
    return connection


def seed_batches(path: Path, count: int, *, newest: datetime) -> None:
    """`count` completed one-item batches, older than anything the run submits."""
    start = (newest - timedelta(days=1, seconds=count)).strftime("%Y-%m-%d %H:%M:%S")
    connection = connect(path)
    try:
        with connection:
            connection.execute("BEGIN IMMEDIATE")
            for statement in _SEED:
                connection.execute(statement, {"count": count, "start": start})
            if connection.execute(_HAS_TALLY).fetchone():
                connection.execute(_RETALLY)
    except sqlite3.OperationalError as error:
        raise SchemaMismatch(f"seeding failed ({error}): has storage/models.py changed?") from None
    finally:
        connection.close()


class Watcher:
    """Reads how far processing has got."""

    def __init__(self, path: Path) -> None:
        self._connection = connect(path)

    def close(self) -> None:
        self._connection.close()

    def newest_batch(self) -> int:
        """The highest batch number so far: every batch submitted later has a higher one."""
        return self._connection.execute("SELECT COALESCE(MAX(id), 0) FROM batch").fetchone()[0]

    def settled_after(self, newest_before: int) -> int:
        """Items settled in the batches numbered above `newest_before`."""
        query = "SELECT COUNT(*) FROM batch_item WHERE batch_id > ? AND status != 'pending'"
        return self._connection.execute(query, (newest_before,)).fetchone()[0]

    def pending(self) -> int:
        query = "SELECT COUNT(*) FROM batch_item WHERE status = 'pending'"
        return self._connection.execute(query).fetchone()[0]

    def wait_until_idle(self, *, quiet_seconds: float, timeout: float) -> None:
        """Until no item is pending anywhere, then `quiet_seconds` more."""
        deadline = time.perf_counter() + timeout
        while self.pending():
            if time.perf_counter() > deadline:
                raise TimeoutError(f"{self.pending()} items still pending after {timeout:.0f}s")
            time.sleep(0.05)
        time.sleep(quiet_seconds)


class SettlingWatch:
    """Polls, in a thread of its own, the batches submitted from now on until `items` settle.

        with SettlingWatch(path, items=1000) as watch:
            ...submit...
        watch.observations  # [(time.perf_counter(), items settled so far), ...]

    Watching starts before the submit, so a commit the consumer makes while
    the client still waits for its 202 is seen too.
    """

    def __init__(self, path: Path, *, items: int, timeout: float) -> None:
        self._path = path
        self._items = items
        self._timeout = timeout
        self._stop = threading.Event()
        self._observations: list[tuple[float, int]] = []
        self._error: BaseException | None = None
        watcher = Watcher(path)
        try:
            self._newest_before = watcher.newest_batch()
        finally:
            watcher.close()
        self._thread = threading.Thread(target=self._poll, name="SettlingWatch", daemon=True)

    def __enter__(self) -> "SettlingWatch":
        self._thread.start()
        return self

    def __exit__(self, exc_type, *_exc) -> None:
        if exc_type is not None:
            self._stop.set()
        self._thread.join()

    @property
    def observations(self) -> list[tuple[float, int]]:
        if self._error is not None:
            raise self._error
        return self._observations

    def _poll(self) -> None:
        watcher = Watcher(self._path)
        deadline = time.perf_counter() + self._timeout
        try:
            while not self._stop.is_set():
                settled = watcher.settled_after(self._newest_before)
                moment = time.perf_counter()
                if not self._observations or self._observations[-1][1] != settled:
                    self._observations.append((moment, settled))
                if settled >= self._items:
                    return
                if moment > deadline:
                    raise TimeoutError(f"{self._items - settled} of {self._items} items unsettled")
                time.sleep(POLL_SECONDS)
        except BaseException as error:  # handed to the caller through `observations`
            self._error = error
        finally:
            watcher.close()

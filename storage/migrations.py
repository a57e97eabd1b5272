"""Versioned schema migrations, safe to run from several hosts at once.

`python -m storage.migrations` brings the database to the newest version.
Each migration runs once, in order, inside one transaction that holds a
database-wide lock (an advisory lock on PostgreSQL, BEGIN IMMEDIATE on
SQLite), so concurrent runs wait for each other and then find nothing to do.
A migration is frozen once released: it declares the tables as they were at
its version, never imports today's models.
"""

import logging
import sys
from collections.abc import Callable

from peewee import (
    BlobField,
    BooleanField,
    CharField,
    CompositeKey,
    DateField,
    DateTimeField,
    ForeignKeyField,
    IntegerField,
    Model,
    TextField,
)

from storage.database import database, is_sqlite, writing
from storage.models import SequenceField
from storage.queue import QUEUE_TABLES

log = logging.getLogger(__name__)

# Any constant works; it only has to be the same for every host.
_ADVISORY_LOCK_KEY = 0x6275_6C6B


class SchemaVersion(Model):
    version = IntegerField()

    class Meta:
        database = database
        table_name = "schema_version"


def _initial_schema() -> None:
    class Frozen(Model):
        class Meta:
            database = database
            legacy_table_names = False

    class Batch(Frozen):
        id = SequenceField()
        coordinator_id = CharField(max_length=64)
        label = CharField(max_length=200, null=True)
        status = CharField(max_length=16)
        total_items = IntegerField()
        completed = IntegerField(default=0)
        failed = IntegerField(default=0)
        pending = IntegerField()
        cancelled = IntegerField(default=0)
        version = IntegerField(default=1)
        submitted_at = DateTimeField()
        updated_at = DateTimeField()
        completed_at = DateTimeField(null=True)
        cancelled_at = DateTimeField(null=True)
        cancellation_reason = CharField(max_length=500, null=True)
        lease_expires_at = DateTimeField(null=True)

        class Meta:
            indexes = (
                (("submitted_at", "id"), False),
                (("status", "submitted_at", "id"), False),
                (("coordinator_id", "submitted_at", "id"), False),
            )

    class BatchItem(Frozen):
        batch = ForeignKeyField(Batch, on_delete="CASCADE", column_name="batch_id", index=False)
        position = IntegerField()
        mentor_id = CharField(max_length=64)
        activity_type = CharField(max_length=32)
        activity_date = DateField()
        duration_minutes = IntegerField()
        notes = TextField(null=True)
        status = CharField(max_length=16)
        activity_id = IntegerField(null=True)
        error_code = CharField(max_length=32, null=True)
        attempts = IntegerField(default=1)
        repeats_earlier = BooleanField(default=False)
        settled_at = DateTimeField(null=True)

        class Meta:
            primary_key = CompositeKey("batch", "position")

    BatchItem.add_index(
        BatchItem.batch,
        BatchItem.position,
        where=BatchItem.status == "pending",
        name="batchitem_pending",
    )

    class Activity(Frozen):
        id = SequenceField()
        mentor_id = CharField(max_length=64)
        activity_type = CharField(max_length=32)
        activity_date = DateField()
        duration_minutes = IntegerField()
        notes = TextField(null=True)
        created_at = DateTimeField()
        source_batch_id = IntegerField(null=True)
        source_position = IntegerField(null=True)

        class Meta:
            indexes = ((("mentor_id", "activity_type", "activity_date"), True),)

    database.create_tables([Batch, BatchItem, Activity, *QUEUE_TABLES])


def _idempotency_keys() -> None:
    class IdempotencyKey(Model):
        operation = CharField(max_length=32)
        scope = CharField(max_length=32)
        key = CharField(max_length=255)
        fingerprint = CharField(max_length=64)
        response_status = IntegerField(null=True)
        response_headers = TextField(null=True)
        response_body = BlobField(null=True)
        locked_until = DateTimeField(null=True)
        created_at = DateTimeField()
        expires_at = DateTimeField(index=True)

        class Meta:
            database = database
            legacy_table_names = False
            primary_key = CompositeKey("operation", "scope", "key")

    database.create_tables([IdempotencyKey])


def _batch_tally() -> None:
    class BatchTally(Model):
        coordinator_id = CharField(max_length=64)
        status = CharField(max_length=16, index=True)
        batches = IntegerField()

        class Meta:
            database = database
            legacy_table_names = False
            primary_key = CompositeKey("coordinator_id", "status")

    database.create_tables([BatchTally])
    database.execute_sql(
        "INSERT INTO batch_tally (coordinator_id, status, batches) "
        "SELECT coordinator_id, status, COUNT(*) FROM batch GROUP BY coordinator_id, status"
    )


MIGRATIONS: list[Callable[[], None]] = [
    _initial_schema,
    _idempotency_keys,
    _batch_tally,
]

LATEST_VERSION = len(MIGRATIONS)


def current_version() -> int:
    if not database.table_exists(SchemaVersion._meta.table_name):
        return 0
    row = SchemaVersion.select().first()
    return row.version if row else 0


def migrate(target: int = LATEST_VERSION) -> tuple[int, int]:
    """Apply every migration up to `target`; returns (version before, version after)."""
    with writing():
        # On SQLite, BEGIN IMMEDIATE already holds the one write lock.
        if not is_sqlite():
            database.execute_sql("SELECT pg_advisory_xact_lock(%s)", (_ADVISORY_LOCK_KEY,))
        database.create_tables([SchemaVersion])
        before = current_version()
        for version in range(before + 1, target + 1):
            log.info("applying migration %d: %s", version, MIGRATIONS[version - 1].__name__)
            MIGRATIONS[version - 1]()
        after = max(before, target)
        SchemaVersion.delete().execute()
        SchemaVersion.create(version=after)
    return before, after


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    before, after = migrate()
    if before == after:
        print(f"schema is up to date at version {after}", file=sys.stderr)
    else:
        print(f"schema migrated from version {before} to {after}", file=sys.stderr)


if __name__ == "__main__":
    main()

"""Queries and changes on batches and their items.

Every function here runs inside a transaction its caller opened
(`storage.database.writing()` or `reading()`).
"""

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from peewee import SQL, fn

from rules import BatchStatus, ItemStatus, batch_status, repeats_earlier
from storage.database import database, is_sqlite
from storage.locks import lock_batch_for_writer
from storage.models import Batch, BatchItem, BatchTally
from storage.prepared import PreparedInsert, PreparedScalar, PreparedSelect, row_type

# 200 rows of 10 values per INSERT: well under SQLite's bound-variable limit.
_INSERT_ITEMS = PreparedInsert(
    BatchItem,
    [
        BatchItem.batch,
        BatchItem.position,
        BatchItem.mentor_id,
        BatchItem.activity_type,
        BatchItem.activity_date,
        BatchItem.duration_minutes,
        BatchItem.notes,
        BatchItem.status,
        BatchItem.repeats_earlier,
        BatchItem.attempts,
    ],
    rows_per_statement=200,
)


@dataclass(frozen=True)
class NewItem:
    mentor_id: str
    activity_type: str
    activity_date: date
    duration_minutes: int
    notes: str | None


def insert_batch(
    coordinator_id: str,
    label: str | None,
    items: Sequence[NewItem],
    *,
    now: datetime,
    lease_until: datetime,
) -> Batch:
    batch = Batch.create(
        coordinator_id=coordinator_id,
        label=label,
        status=BatchStatus.PROCESSING,
        total_items=len(items),
        pending=len(items),
        submitted_at=now,
        updated_at=now,
        lease_expires_at=lease_until,
    )
    _tally(coordinator_id, BatchStatus.PROCESSING, +1)
    repeats = repeats_earlier((i.mentor_id, i.activity_type, i.activity_date) for i in items)
    _INSERT_ITEMS.run(
        (
            batch.id,
            position,
            item.mentor_id,
            item.activity_type,
            item.activity_date,
            item.duration_minutes,
            item.notes,
            ItemStatus.PENDING.value,
            repeat,
            1,
        )
        for position, (item, repeat) in enumerate(zip(items, repeats, strict=True), start=1)
    )
    return batch


BatchRow = row_type(Batch)
ItemRow = row_type(BatchItem)

_BATCH = PreparedSelect(Batch.select().where(Batch.id == 0), BatchRow)
_ITEMS = PreparedSelect(
    BatchItem.select().where(BatchItem.batch == 0).order_by(BatchItem.position), ItemRow
)
_ITEMS_WITH_STATUS = PreparedSelect(
    BatchItem.select()
    .where((BatchItem.batch == 0) & (BatchItem.status == ""))
    .order_by(BatchItem.position),
    ItemRow,
)


def find_batch(number: int) -> BatchRow | None:
    found = _BATCH.run(number)
    return found[0] if found else None


def lock_batch(number: int) -> Batch | None:
    """The batch, locked against chunks and other writers until the transaction ends.

    For cancel, retry, update and delete; storage/locks.py explains the order.
    """
    lock_batch_for_writer(number)
    return lock_batch_row(number)


def lock_batch_row(number: int) -> Batch | None:
    """The batch's row as last committed, locked until the transaction ends.

    SQLite has no row locks: its write transactions (BEGIN IMMEDIATE) already
    exclude each other.
    """
    query = Batch.select().where(Batch.id == number)
    if not is_sqlite():
        query = query.for_update()
    return query.first()


def batch_items(number: int, status: str | None = None) -> list[ItemRow]:
    if status is None:
        return _ITEMS.run(number)
    return _ITEMS_WITH_STATUS.run(number, status)


@functools.cache
def _listing(by_status: bool, by_coordinator: bool) -> tuple[PreparedScalar, PreparedSelect]:
    """The count and the page query for one combination of filters.

    The count sums the tally, not the batches. A page first picks its ids
    from the index alone (newest first, skipping `offset` index entries, not
    table rows), then reads just those rows: page 1000 costs about what
    page 1 does.
    """
    matching = Batch.select(Batch.id)
    tally = BatchTally.select(fn.COALESCE(fn.SUM(BatchTally.batches), SQL("0")))
    if by_status:
        matching = matching.where(Batch.status == "")
        tally = tally.where(BatchTally.status == "")
    if by_coordinator:
        matching = matching.where(Batch.coordinator_id == "")
        tally = tally.where(BatchTally.coordinator_id == "")
    count = PreparedScalar(tally)
    newest_first = (Batch.submitted_at.desc(), Batch.id.desc())
    page_ids = matching.order_by(*newest_first).limit(1).offset(1)
    page = Batch.select().where(Batch.id.in_(page_ids)).order_by(*newest_first)
    return count, PreparedSelect(page, BatchRow)


def list_batches(
    *, status: str | None, coordinator_id: str | None, offset: int, limit: int
) -> tuple[list[BatchRow], int]:
    """One page of batches, newest first, and how many match in all."""
    count, page = _listing(status is not None, coordinator_id is not None)
    filters = [value for value in (status, coordinator_id) if value is not None]
    return page.run(*filters, limit, offset), count.run(*filters)


def save_progress(batch: Batch, *, now: datetime, **changes) -> None:
    """Store a changed batch: its derived status, completion time and a new version.

    Callers hold the batch's lock (`lock_batch`) and have adjusted its counters.
    """
    for name, value in changes.items():
        setattr(batch, name, value)
    before = batch.status
    batch.status = batch_status(
        cancelled=batch.cancelled_at is not None,
        pending=batch.pending,
        completed=batch.completed,
        failed=batch.failed,
    )
    if batch.status != before:
        # A fixed order, so two transactions never wait on each other's tally rows.
        for status, change in sorted([(before, -1), (batch.status, +1)]):
            _tally(batch.coordinator_id, status, change)
    if batch.pending:
        batch.completed_at = None
    elif batch.completed_at is None:
        batch.completed_at = now
    batch.version += 1
    batch.updated_at = now
    batch.save()


def cancel_pending_items(batch: Batch, *, reason: str | None, now: datetime) -> int:
    cancelled = (
        BatchItem.update(status=ItemStatus.CANCELLED, settled_at=now)
        .where((BatchItem.batch == batch.id) & (BatchItem.status == ItemStatus.PENDING))
        .execute()
    )
    save_progress(
        batch,
        now=now,
        pending=batch.pending - cancelled,
        cancelled=batch.cancelled + cancelled,
        cancelled_at=now,
        cancellation_reason=reason,
        lease_expires_at=None,
    )
    return cancelled


def retry_failed_items(batch: Batch, *, now: datetime, lease_until: datetime) -> int:
    retried = (
        BatchItem.update(
            status=ItemStatus.PENDING,
            error_code=None,
            settled_at=None,
            attempts=BatchItem.attempts + 1,
        )
        .where((BatchItem.batch == batch.id) & (BatchItem.status == ItemStatus.FAILED))
        .execute()
    )
    save_progress(
        batch,
        now=now,
        pending=batch.pending + retried,
        failed=batch.failed - retried,
        lease_expires_at=lease_until,
    )
    return retried


def delete_batch(batch: Batch) -> None:
    """The batch and its items go; the activities they created stay."""
    BatchItem.delete().where(BatchItem.batch == batch.id).execute()
    batch.delete_instance()
    _tally(batch.coordinator_id, batch.status, -1)


_P = database.param
_TALLY = (
    f"INSERT INTO batch_tally (coordinator_id, status, batches) VALUES ({_P}, {_P}, {_P}) "
    "ON CONFLICT (coordinator_id, status) DO UPDATE "
    "SET batches = batch_tally.batches + excluded.batches"
)


def _tally(coordinator_id: str, status: str, change: int) -> None:
    database.execute_sql(_TALLY, (coordinator_id, str(status), change))


def lease_expiry(now: datetime, seconds: float) -> datetime:
    return now + timedelta(seconds=seconds)

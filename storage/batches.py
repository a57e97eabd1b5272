"""Queries and changes on batches and their items.

Every function here runs inside a transaction its caller opened
(`storage.database.writing()` or `reading()`).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from peewee import chunked, fn

from rules import BatchStatus, ItemStatus, batch_status, repeats_earlier
from storage.database import is_sqlite
from storage.locks import lock_batch_for_writer
from storage.models import Batch, BatchItem

# Rows per INSERT: well under SQLite's bound-variable limit.
_INSERT_ROWS = 200


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
    repeats = repeats_earlier((i.mentor_id, i.activity_type, i.activity_date) for i in items)
    rows = (
        (
            batch.id,
            position,
            item.mentor_id,
            item.activity_type,
            item.activity_date,
            item.duration_minutes,
            item.notes,
            ItemStatus.PENDING,
            repeat,
        )
        for position, (item, repeat) in enumerate(zip(items, repeats, strict=True), start=1)
    )
    fields = [
        BatchItem.batch,
        BatchItem.position,
        BatchItem.mentor_id,
        BatchItem.activity_type,
        BatchItem.activity_date,
        BatchItem.duration_minutes,
        BatchItem.notes,
        BatchItem.status,
        BatchItem.repeats_earlier,
    ]
    for chunk in chunked(rows, _INSERT_ROWS):
        BatchItem.insert_many(chunk, fields=fields).execute()
    return batch


def find_batch(number: int) -> Batch | None:
    return Batch.get_or_none(Batch.id == number)


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


def batch_items(number: int, status: str | None = None) -> list[BatchItem]:
    query = BatchItem.select().where(BatchItem.batch == number)
    if status is not None:
        query = query.where(BatchItem.status == status)
    return list(query.order_by(BatchItem.position))


def list_batches(
    *, status: str | None, coordinator_id: str | None, offset: int, limit: int
) -> tuple[list[Batch], int]:
    """One page of batches, newest first, and how many match in all."""
    query = Batch.select()
    if status is not None:
        query = query.where(Batch.status == status)
    if coordinator_id is not None:
        query = query.where(Batch.coordinator_id == coordinator_id)
    total = query.select(fn.COUNT(Batch.id)).scalar()
    page = query.order_by(Batch.submitted_at.desc(), Batch.id.desc()).offset(offset).limit(limit)
    return list(page), total


def save_progress(batch: Batch, *, now: datetime, **changes) -> None:
    """Store a changed batch: its derived status, completion time and a new version.

    Callers hold the batch's lock (`lock_batch`) and have adjusted its counters.
    """
    for name, value in changes.items():
        setattr(batch, name, value)
    batch.status = batch_status(
        cancelled=batch.cancelled_at is not None,
        pending=batch.pending,
        completed=batch.completed,
        failed=batch.failed,
    )
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


def lease_expiry(now: datetime, seconds: float) -> datetime:
    return now + timedelta(seconds=seconds)

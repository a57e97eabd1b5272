"""The worker's database work: settling a batch's pending items chunk by chunk.

A chunk is one transaction: the activities it creates, the items it settles
and the batch's counters commit together or not at all, so re-running a chunk
after a crash cannot create a second activity, and a consumer that dies
mid-chunk releases the items it had claimed. Several chunks of one batch may
run at once on different consumers, each on the pending items it claimed;
cancel, retry, update and delete wait for them and exclude them
(storage/locks.py), so counters always add up and no item is settled twice.
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime

from peewee import chunked

from rules import BatchStatus, ItemError, ItemStatus, judge_item
from storage.batches import find_batch, lease_expiry, lock_batch_row, save_progress
from storage.database import is_sqlite
from storage.locks import share_batch_with_chunks
from storage.models import Activity, Batch, BatchItem

_INSERT_ROWS = 200


@dataclass(frozen=True)
class ChunkOutcome:
    settled: int
    # Pending items of the batch after this chunk, including any that other
    # consumers have claimed and not yet settled.
    still_pending: int


def settle_next_chunk(
    number: int, *, limit: int, today: date, now: datetime, lease_seconds: float
) -> ChunkOutcome | None:
    """Settle up to `limit` pending items of a batch, in submitted order.

    Returns None when there is nothing to do: the batch is gone, cancelled,
    or has no pending item that another consumer has not already claimed.
    Runs inside the caller's write transaction.
    """
    share_batch_with_chunks(number)
    batch = find_batch(number)
    if batch is None or batch.cancelled_at is not None or not batch.pending:
        return None
    items = _claim_pending_items(number, limit)
    if not items:
        return None

    verdicts: dict[ItemError | None, list[int]] = defaultdict(list)
    candidates = []
    for item in items:
        error = judge_item(item.activity_date, today=today, repeats_earlier=item.repeats_earlier)
        if error is None:
            candidates.append(item)
        else:
            verdicts[error].append(item.position)

    created = _create_activities(candidates, batch_number=number, now=now)
    for item in candidates:
        key = (item.mentor_id, item.activity_type, item.activity_date)
        verdicts[None if key in created else ItemError.DUPLICATE_ACTIVITY].append(item.position)

    _mark_succeeded(number, verdicts.pop(None, []), now=now)
    for error, positions in verdicts.items():
        _mark_failed(number, positions, error, now=now)

    # Other chunks of this batch may have committed since it was read.
    batch = lock_batch_row(number)
    succeeded = len(items) - sum(len(positions) for positions in verdicts.values())
    save_progress(
        batch,
        now=now,
        pending=batch.pending - len(items),
        completed=batch.completed + succeeded,
        failed=batch.failed + len(items) - succeeded,
        lease_expires_at=lease_expiry(now, lease_seconds) if batch.pending > len(items) else None,
    )
    return ChunkOutcome(settled=len(items), still_pending=batch.pending)


def _claim_pending_items(number: int, limit: int) -> list[BatchItem]:
    """The first pending items no other chunk holds, locked until the transaction ends."""
    query = (
        BatchItem.select()
        .where((BatchItem.batch == number) & (BatchItem.status == ItemStatus.PENDING))
        .order_by(BatchItem.position)
        .limit(limit)
    )
    if not is_sqlite():
        query = query.for_update(skip_locked=True)
    return list(query)


def _create_activities(
    items: list[BatchItem], *, batch_number: int, now: datetime
) -> set[tuple[str, str, date]]:
    """Insert an activity per item unless one exists; the keys actually created.

    The unique index decides, not a prior read, so two consumers racing on the
    same (mentor, type, date) create one activity between them. Rows go in key
    order so concurrent inserts on PostgreSQL cannot deadlock.
    """
    rows = sorted(
        (
            item.mentor_id,
            item.activity_type,
            item.activity_date,
            item.duration_minutes,
            item.notes,
            now,
            batch_number,
            item.position,
        )
        for item in items
    )
    fields = [
        Activity.mentor_id,
        Activity.activity_type,
        Activity.activity_date,
        Activity.duration_minutes,
        Activity.notes,
        Activity.created_at,
        Activity.source_batch_id,
        Activity.source_position,
    ]
    created = set()
    for chunk in chunked(rows, _INSERT_ROWS):
        query = (
            Activity.insert_many(chunk, fields=fields)
            .on_conflict_ignore()
            .returning(Activity.mentor_id, Activity.activity_type, Activity.activity_date)
            .tuples()
        )
        created.update(query.execute())
    return created


def _mark_succeeded(batch_number: int, positions: list[int], *, now: datetime) -> None:
    if not positions:
        return
    activity_id = Activity.select(Activity.id).where(
        (Activity.mentor_id == BatchItem.mentor_id)
        & (Activity.activity_type == BatchItem.activity_type)
        & (Activity.activity_date == BatchItem.activity_date)
    )
    for chunk in chunked(positions, 500):
        (
            BatchItem.update(status=ItemStatus.SUCCESS, activity_id=activity_id, settled_at=now)
            .where((BatchItem.batch == batch_number) & BatchItem.position.in_(chunk))
            .execute()
        )


def _mark_failed(
    batch_number: int, positions: list[int], error: ItemError, *, now: datetime
) -> None:
    for chunk in chunked(positions, 500):
        (
            BatchItem.update(status=ItemStatus.FAILED, error_code=error, settled_at=now)
            .where((BatchItem.batch == batch_number) & BatchItem.position.in_(chunk))
            .execute()
        )


def batches_needing_a_job(now: datetime, *, limit: int = 1000) -> list[int]:
    """Batches with pending items whose lease ran out: no consumer is on them.

    A batch is `processing` exactly while it has pending items and is not
    cancelled, so the status index finds them. Rows another reconciler is
    handling right now are skipped, not waited for.
    """
    query = (
        Batch.select(Batch.id)
        .where(
            (Batch.status == BatchStatus.PROCESSING)
            & (Batch.lease_expires_at.is_null() | (Batch.lease_expires_at < now))
        )
        .order_by(Batch.id)
        .limit(limit)
    )
    if not is_sqlite():
        query = query.for_update(skip_locked=True)
    return [batch_id for (batch_id,) in query.tuples()]


def renew_lease(numbers: list[int], until: datetime) -> None:
    Batch.update(lease_expires_at=until).where(Batch.id.in_(numbers)).execute()


def take_lease(number: int, until: datetime) -> None:
    """Claim a batch a job is starting on, in a transaction of its own.

    Until its first chunk commits, the lease a batch carries is the queue's
    grace period; if this consumer dies mid-chunk, the short lease lets the
    reconciler queue the batch again soon.
    """
    (
        Batch.update(lease_expires_at=until)
        .where((Batch.id == number) & (Batch.status == BatchStatus.PROCESSING))
        .execute()
    )

"""The worker's database work: settling a batch's pending items chunk by chunk.

Every writer of a batch (this worker, cancel, retry, update, delete) locks the
batch row first, so a chunk, a cancellation and a retry never interleave:
counters always add up and no item is settled twice. A chunk is one
transaction: the activities it creates, the items it settles and the batch's
counters commit together or not at all, so re-running a chunk after a crash
cannot create a second activity.
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime

from peewee import chunked

from rules import BatchStatus, ItemError, ItemStatus, judge_item
from storage.batches import lease_expiry, lock_batch, save_progress
from storage.database import is_sqlite
from storage.models import Activity, Batch, BatchItem

_INSERT_ROWS = 200


@dataclass(frozen=True)
class ChunkOutcome:
    settled: int
    still_pending: int


def settle_next_chunk(
    number: int, *, limit: int, today: date, now: datetime, lease_seconds: float
) -> ChunkOutcome | None:
    """Settle up to `limit` pending items of a batch, in submitted order.

    Returns None when there is nothing to do: the batch is gone, cancelled,
    or has no pending item. Runs inside the caller's write transaction.
    """
    batch = lock_batch(number)
    if batch is None or batch.cancelled_at is not None or not batch.pending:
        return None
    items = list(
        BatchItem.select()
        .where((BatchItem.batch == number) & (BatchItem.status == ItemStatus.PENDING))
        .order_by(BatchItem.position)
        .limit(limit)
    )
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

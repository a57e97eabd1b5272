"""What must hold for every batch, however many consumers and clients raced on it.

Read straight from the database, so live tests can check what the processes
they started left behind.
"""

from collections import Counter

from peewee import fn

# Registers the job type, so queued jobs can be read back.
import worker.tasks  # noqa: F401
from rules import BatchStatus, ItemStatus, batch_status
from storage.database import reading
from storage.models import Activity, Batch, BatchItem
from storage.queue import huey


def check_invariants(*, all_settled: bool) -> int:
    """Assert the invariants over every batch, item and activity; returns how many facts held.

    - the counters add up to `total_items` and equal the items' own statuses,
      and the stored status is the one derived from them;
    - an item's result agrees with its status: a success points at the
      activity for its own (mentor, type, date), a failure has a reason;
    - one activity per (mentor, type, date), one success item per activity,
      and an activity's source item, if still there, is that success: an
      item settled twice would have failed as the duplicate of its own
      activity, or counted twice;
    - with `all_settled`, nothing is pending anywhere; otherwise every batch
      still processing has a job in the queue.
    """
    with reading():
        batches = {batch.id: batch for batch in Batch.select()}
        items = list(BatchItem.select())
        activities = {activity.id: activity for activity in Activity.select()}
    facts = 0

    statuses: dict[int, Counter] = {number: Counter() for number in batches}
    for item in items:
        statuses[item.batch_id][item.status] += 1
    for number, batch in batches.items():
        counted = statuses[number]
        counters = (batch.completed, batch.failed, batch.pending, batch.cancelled)
        assert sum(counters) == batch.total_items == counted.total(), batch.__data__
        assert counters == (
            counted[ItemStatus.SUCCESS],
            counted[ItemStatus.FAILED],
            counted[ItemStatus.PENDING],
            counted[ItemStatus.CANCELLED],
        ), (batch.__data__, counted)
        derived = batch_status(
            cancelled=batch.cancelled_at is not None,
            pending=batch.pending,
            completed=batch.completed,
            failed=batch.failed,
        )
        assert batch.status == derived, batch.__data__
        assert (batch.completed_at is None) == bool(batch.pending), batch.__data__
        facts += 4

    keys = Counter((a.mentor_id, a.activity_type, a.activity_date) for a in activities.values())
    assert max(keys.values(), default=1) == 1, keys.most_common(3)
    activity_of_item = {}
    for item in items:
        key = (item.mentor_id, item.activity_type, item.activity_date)
        if item.status == ItemStatus.SUCCESS:
            activity = activities[item.activity_id]
            assert (activity.mentor_id, activity.activity_type, activity.activity_date) == key
            activity_of_item[(item.batch_id, item.position)] = item.activity_id
        else:
            assert item.activity_id is None, item.__data__
        assert (item.error_code is not None) == (item.status == ItemStatus.FAILED), item.__data__
        assert (item.settled_at is None) == (item.status == ItemStatus.PENDING), item.__data__
        facts += 3
    assert len(set(activity_of_item.values())) == len(activity_of_item)
    for activity in activities.values():
        source = (activity.source_batch_id, activity.source_position)
        if activity.source_batch_id in batches:
            assert activity_of_item.get(source) == activity.id, (activity.__data__, source)
            facts += 1
    facts += 2

    processing = {n for n, b in batches.items() if b.status == BatchStatus.PROCESSING}
    if all_settled:
        assert not processing, sorted(processing)
    else:
        assert processing <= queued_batches(), sorted(processing - queued_batches())
    return facts + 1


def items_by_status() -> Counter:
    with reading():
        query = BatchItem.select(BatchItem.status, fn.COUNT(BatchItem.position))
        return Counter(dict(query.group_by(BatchItem.status).tuples()))


def queued_batches() -> set[int]:
    """The batches that have a job waiting in the (database) queue."""
    with reading():
        return {task.args[0] for task in huey.pending()}

"""The jobs: process a batch's pending items, and find batches nobody works on."""

import logging

from rules import today_in, utc_now
from settings import settings
from storage.batches import lease_expiry
from storage.database import writing
from storage.processing import batches_needing_a_job, renew_lease, settle_next_chunk
from storage.queue import huey

log = logging.getLogger(__name__)


@huey.task(retries=3, retry_delay=1)
def process_batch(number: int) -> None:
    """Settle a batch's pending items, chunk by chunk.

    A job settles at most `task_item_budget` items, then hands the rest of the
    batch back to the queue in the same transaction as its last chunk: batches
    share the consumers fairly, and a stopping consumer never holds a long job.
    """
    budget = settings.task_item_budget
    while budget > 0:
        with writing():
            outcome = settle_next_chunk(
                number,
                limit=min(settings.chunk_size, budget),
                today=today_in(settings.programme_timezone),
                now=utc_now(),
                lease_seconds=settings.lease_seconds,
            )
            if outcome is None:
                return
            budget -= outcome.settled
            if budget <= 0 and outcome.still_pending:
                queue_batch(number)


def queue_batch(number: int) -> None:
    """Queue the job for a batch; inside a write transaction, it commits with it."""
    process_batch(number)


def reconcile() -> list[int]:
    """Queue again every batch with pending items whose lease ran out.

    That happens when a consumer died mid-batch (its job was already taken off
    the queue) or a queued job was lost. Returns the batch numbers queued.
    """
    now = utc_now()
    with writing():
        numbers = batches_needing_a_job(now)
        if numbers:
            renew_lease(numbers, lease_expiry(now, settings.queue_grace_seconds))
            for number in numbers:
                queue_batch(number)
    if numbers:
        log.warning("re-queued %d batch(es) with no live job: %s", len(numbers), numbers)
    return numbers

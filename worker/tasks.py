"""The jobs: process a batch's pending items, and find batches nobody works on."""

import logging
import threading

from huey.signals import SIGNAL_INTERRUPTED

from rules import today_in, utc_now
from settings import settings
from storage.batches import lease_expiry
from storage.database import after_commit, writing
from storage.processing import batches_needing_a_job, renew_lease, settle_next_chunk, take_lease
from storage.queue import QUEUE_IN_DATABASE, huey

log = logging.getLogger(__name__)

# Set when the consumer in this process begins to stop (worker/__main__.py):
# jobs then hand their batch back to the queue after the chunk in hand.
stopping = threading.Event()


@huey.task(retries=3, retry_delay=1)
def process_batch(number: int) -> None:
    """Settle a batch's pending items, chunk by chunk.

    A job whose batch still has pending items after its first chunk queues a
    second job for it, so another consumer can take the next chunk meanwhile.
    A job settles at most `task_item_budget` items, and no further chunk once
    its consumer is stopping; it then hands the rest of the batch back to the
    queue in the same transaction as its last chunk.
    """
    with writing():
        take_lease(number, lease_expiry(utc_now(), settings.lease_seconds))
    budget = settings.task_item_budget
    first_chunk = True
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
            hand_back = budget <= 0 or stopping.is_set()
            if outcome.still_pending and (hand_back or first_chunk):
                queue_batch(number)
        if hand_back:
            return
        first_chunk = False


def queue_batch(number: int) -> None:
    """Queue the job for a batch.

    Inside a write transaction, a queue in the database commits with it. A
    queue on Redis cannot, so the job is sent once the transaction has
    committed; if that fails, the batch's lease runs out and the reconciler
    queues it again.
    """
    if QUEUE_IN_DATABASE:
        process_batch(number)
    else:
        after_commit(lambda: process_batch(number))


@huey.signal(SIGNAL_INTERRUPTED)
def queue_interrupted_batch(signal: str, task) -> None:
    """A consumer stopped at once mid-job: queue its batch now, not when the lease runs out.

    The interrupted chunk's transaction never commits, so its items are
    pending again for whichever consumer takes the new job.
    """
    (number,) = task.args
    with writing():
        queue_batch(number)
    log.warning("job for batch %d interrupted; queued it again", number)


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

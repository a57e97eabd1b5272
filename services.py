"""The operations of the service, one function each, as the handlers call them.

This is the one place that opens transactions for the web tier: each
operation either happens whole or not at all.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from rules import etag_matches, format_batch_id, make_etag, utc_now
from settings import settings
from storage import batches
from storage.batches import BatchRow, ItemRow, NewItem
from storage.database import reading, writing
from storage.models import Batch
from worker.tasks import queue_batch


class BatchNotFound(Exception):
    """No batch has this id; the argument is the public batch id."""


class NothingToDo(Exception):
    """The action would change nothing in the batch's current state."""


class PreconditionFailed(Exception):
    """If-Match named another version of the batch; the argument is the current ETag."""


@dataclass(frozen=True)
class BatchPage:
    batches: list[BatchRow]
    total: int


def submit_batch(coordinator_id: str, label: str | None, items: Sequence[NewItem]) -> Batch:
    """Store a batch with all its items pending, and queue its job, in one transaction."""
    now = utc_now()
    with writing():
        batch = batches.insert_batch(
            coordinator_id,
            label,
            items,
            now=now,
            lease_until=batches.lease_expiry(now, settings.queue_grace_seconds),
        )
        queue_batch(batch.id)
    return batch


def get_batch(number: int, item_status: str | None = None) -> tuple[BatchRow, list[ItemRow]]:
    with reading():
        batch = batches.find_batch(number)
        if batch is None:
            raise BatchNotFound(format_batch_id(number))
        return batch, batches.batch_items(number, item_status)


def list_batches(
    *, status: str | None, coordinator_id: str | None, page: int, limit: int
) -> BatchPage:
    with reading():
        found, total = batches.list_batches(
            status=status, coordinator_id=coordinator_id, offset=(page - 1) * limit, limit=limit
        )
    return BatchPage(found, total)


def update_batch(number: int, changes: dict, *, if_match: str | None = None) -> Batch:
    """Re-label a batch and/or cancel it (`status: cancelled`), all or nothing."""
    now = utc_now()
    with writing():
        batch = _locked(number, if_match)
        if changes.get("status") == "cancelled":
            _cancel(batch, reason=changes.get("cancellation_reason"), now=now)
        if "label" in changes:
            batches.save_progress(batch, now=now, label=changes["label"])
    return batch


def delete_batch(number: int, *, if_match: str | None = None) -> None:
    with writing():
        batch = _locked(number, if_match)
        if batch.pending:
            raise NothingToDo(
                f"The batch still has {batch.pending} pending item(s); "
                "cancel it or wait until it is processed, then delete it."
            )
        batches.delete_batch(batch)


def retry_failed_items(number: int, *, if_match: str | None = None) -> tuple[Batch, int]:
    now = utc_now()
    with writing():
        batch = _locked(number, if_match)
        if batch.cancelled_at is not None:
            raise NothingToDo("The batch was cancelled; its items cannot be retried.")
        if not batch.failed:
            raise NothingToDo("The batch has no failed item to retry.")
        retried = batches.retry_failed_items(
            batch, now=now, lease_until=batches.lease_expiry(now, settings.queue_grace_seconds)
        )
        queue_batch(number)
    return batch, retried


def cancel_pending_items(number: int, *, if_match: str | None = None) -> tuple[Batch, int]:
    now = utc_now()
    with writing():
        batch = _locked(number, if_match)
        cancelled = _cancel(batch, reason=None, now=now)
    return batch, cancelled


def _locked(number: int, if_match: str | None) -> Batch:
    """The batch, locked for this transaction, if it exists and is the version expected."""
    batch = batches.lock_batch(number)
    if batch is None:
        raise BatchNotFound(format_batch_id(number))
    current = make_etag(batch.id, batch.version)
    if if_match is not None and not etag_matches(if_match, current):
        raise PreconditionFailed(current)
    return batch


def _cancel(batch: Batch, *, reason: str | None, now) -> int:
    if not batch.pending:
        raise NothingToDo(f"The batch has no pending item to cancel (status {batch.status}).")
    return batches.cancel_pending_items(batch, reason=reason, now=now)

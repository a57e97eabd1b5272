"""The JSON shapes of batches and items, as openapi.yaml declares them."""

from rules import (
    ERROR_MESSAGES,
    ItemStatus,
    format_activity_id,
    format_batch_id,
    format_item_id,
    format_timestamp,
)
from storage.batches import BatchRow, ItemRow
from storage.models import Batch

# A batch as read for display (a row) or as just changed (a model): the same fields.
BatchLike = Batch | BatchRow


def _state(batch: BatchLike) -> dict:
    """What every representation of a batch says about where it stands."""
    return {
        "label": batch.label,
        "status": batch.status,
        "total_items": batch.total_items,
        "completed": batch.completed,
        "failed": batch.failed,
        "pending": batch.pending,
        "cancelled": batch.cancelled,
    }


def batch_summary(batch: BatchLike) -> dict:
    return {
        "batch_id": format_batch_id(batch.id),
        "coordinator_id": batch.coordinator_id,
        **_state(batch),
        "submitted_at": format_timestamp(batch.submitted_at),
        "updated_at": format_timestamp(batch.updated_at),
        "completed_at": format_timestamp(batch.completed_at),
    }


def batch_with_items(batch: BatchLike, items: list[ItemRow]) -> dict:
    return {
        **batch_summary(batch),
        "items": [batch_item(item) for item in items],
        "cancelled_at": format_timestamp(batch.cancelled_at),
        "cancellation_reason": batch.cancellation_reason,
    }


def batch_item(item: ItemRow) -> dict:
    shown = {
        "item_id": format_item_id(item.position),
        "mentor_id": item.mentor_id,
        "activity_type": item.activity_type,
        "activity_date": item.activity_date.isoformat(),
        "duration_minutes": item.duration_minutes,
        "notes": item.notes,
        "status": item.status,
        "attempts": item.attempts,
    }
    if item.status == ItemStatus.SUCCESS:
        shown["activity_id"] = format_activity_id(item.activity_id)
    elif item.status == ItemStatus.FAILED:
        shown["error"] = ERROR_MESSAGES[item.error_code]
        shown["error_code"] = item.error_code
    return shown


def batch_metadata(batch: BatchLike) -> dict:
    return {
        "batch_id": format_batch_id(batch.id),
        **_state(batch),
        "cancellation_reason": batch.cancellation_reason,
        "updated_at": format_timestamp(batch.updated_at),
        "cancelled_at": format_timestamp(batch.cancelled_at),
    }


def submit_accepted(batch: BatchLike) -> dict:
    return {
        "batch_id": format_batch_id(batch.id),
        "coordinator_id": batch.coordinator_id,
        "label": batch.label,
        "status": batch.status,
        "total_items": batch.total_items,
        "submitted_at": format_timestamp(batch.submitted_at),
    }

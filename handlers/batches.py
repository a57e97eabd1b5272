"""The seven operations of openapi.yaml, one function each.

Connexion has validated every argument against the spec before a function
here runs, and validates what it returns on the way out.
"""

from datetime import date
from urllib.parse import urlencode

from connexion import request

import services
from handlers import representations
from handlers.idempotency import fingerprint, idempotent
from handlers.problems import json_response
from handlers.routes import collection_path
from rules import format_batch_id, format_timestamp, make_etag, parse_batch_id
from storage.batches import NewItem

# Seconds a client should wait before polling a freshly queued batch.
POLL_AFTER_SECONDS = 1


def list_batches(
    page: int, limit: int, status: str | None = None, coordinator_id: str | None = None
):
    found = services.list_batches(
        status=status, coordinator_id=coordinator_id, page=page, limit=limit
    )
    body = {
        "data": [representations.batch_summary(batch) for batch in found.batches],
        "pagination": {"page": page, "limit": limit, "total": found.total},
    }
    filters = {"status": status, "coordinator_id": coordinator_id}
    return json_response(body, 200, {"Link": _page_links(page, limit, found.total, filters)})


def get_batch(batch_id: str, item_status: str | None = None):
    batch, items = services.get_batch(_batch_number(batch_id), item_status)
    return json_response(representations.batch_with_items(batch, items), 200, _etag(batch))


def submit_batch(body: dict):
    return idempotent("submitBatch", "", fingerprint(body), lambda: _submit(body))


def _submit(body: dict):
    items = [
        NewItem(
            mentor_id=item["mentor_id"],
            activity_type=item["activity_type"],
            activity_date=date.fromisoformat(item["activity_date"]),
            duration_minutes=item["duration_minutes"],
            notes=item.get("notes"),
        )
        for item in body["items"]
    ]
    batch = services.submit_batch(body["coordinator_id"], body.get("label"), items)
    headers = {
        "Location": _batch_url(batch.id),
        "Retry-After": str(POLL_AFTER_SECONDS),
    }
    return json_response(representations.submit_accepted(batch), 202, headers)


def update_batch(batch_id: str, body: dict):
    batch = services.update_batch(_batch_number(batch_id), body, if_match=_if_match())
    return json_response(representations.batch_metadata(batch), 200, _etag(batch))


def delete_batch(batch_id: str):
    services.delete_batch(_batch_number(batch_id), if_match=_if_match())
    return json_response({"success": True, "deleted_batch_id": batch_id}, 200)


def retry_failed_items(batch_id: str):
    return idempotent("retryFailedItems", batch_id, fingerprint(batch_id), lambda: _retry(batch_id))


def _retry(batch_id: str):
    batch, retried = services.retry_failed_items(_batch_number(batch_id), if_match=_if_match())
    body = {
        "batch_id": batch_id,
        "retried_items": retried,
        "status": batch.status,
        "retry_started_at": format_timestamp(batch.updated_at),
    }
    headers = {
        "Location": _batch_url(batch.id),
        "Retry-After": str(POLL_AFTER_SECONDS),
        **_etag(batch),
    }
    return json_response(body, 202, headers)


def cancel_pending_items(batch_id: str):
    batch, cancelled = services.cancel_pending_items(_batch_number(batch_id), if_match=_if_match())
    body = {
        "batch_id": batch_id,
        "cancelled_items": cancelled,
        "status": batch.status,
        "cancelled_at": format_timestamp(batch.cancelled_at),
    }
    return json_response(body, 200, _etag(batch))


def _batch_number(batch_id: str) -> int:
    number = parse_batch_id(batch_id)
    if number is None:
        raise services.BatchNotFound(batch_id)
    return number


def _if_match() -> str | None:
    # Connexion validates header parameters but does not pass them to handlers.
    # Several If-Match fields are one list (RFC 9110).
    fields = request.headers.getlist("If-Match")
    return ", ".join(fields) if fields else None


def _collection_path() -> str:
    return collection_path(request.url.path)


def _batch_url(number: int) -> str:
    return f"{_collection_path()}/{format_batch_id(number)}"


def _etag(batch) -> dict[str, str]:
    return {"ETag": make_etag(batch.id, batch.version)}


def _page_links(page: int, limit: int, total: int, filters: dict) -> str:
    last = max(1, -(-total // limit))
    targets = {"first": 1, "last": last}
    if page > 1:
        targets["prev"] = min(page - 1, last)
    if page < last:
        targets["next"] = page + 1
    collection = _collection_path()
    query = {name: value for name, value in filters.items() if value is not None}
    return ", ".join(
        f'<{collection}?{urlencode({**query, "page": target, "limit": limit})}>; rel="{rel}"'
        for rel, target in targets.items()
    )

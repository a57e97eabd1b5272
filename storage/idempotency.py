"""Idempotency keys: claim a key, record the response it got, replay it.

A key is claimed in its own short transaction, so a second request with the
same key sees it in flight; the response is recorded in the same transaction
as the operation itself, so a key is never marked done for an operation that
did not commit (nor the other way round).
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

import orjson

from storage.models import IdempotencyKey


@dataclass(frozen=True)
class StoredResponse:
    status: int
    headers: dict[str, str]
    body: bytes


class Claim(Enum):
    CLAIMED = "claimed"  # the caller runs the operation now
    IN_FLIGHT = "in flight"  # the first request with this key is still running
    MISMATCH = "mismatch"  # the key was used for a different request


@dataclass(frozen=True)
class KeyRef:
    operation: str
    scope: str
    key: str

    def where(self):
        return (
            (IdempotencyKey.operation == self.operation)
            & (IdempotencyKey.scope == self.scope)
            & (IdempotencyKey.key == self.key)
        )


def claim(
    ref: KeyRef,
    fingerprint: str,
    *,
    now: datetime,
    lock_seconds: float,
    ttl_seconds: float,
) -> Claim | StoredResponse:
    """Claim the key for this request, or say why not (a stored response to replay)."""
    inserted = (
        IdempotencyKey.insert(
            operation=ref.operation,
            scope=ref.scope,
            key=ref.key,
            fingerprint=fingerprint,
            locked_until=now + timedelta(seconds=lock_seconds),
            created_at=now,
            expires_at=now + timedelta(seconds=ttl_seconds),
        )
        .on_conflict_ignore()
        .execute()
    )
    if inserted:
        return Claim.CLAIMED
    # An expired key, or one whose first request died, is taken over; the
    # condition is checked again by the UPDATE itself, so of two requests
    # racing for it (PostgreSQL re-reads the row after waiting) one wins.
    retaken = (
        IdempotencyKey.update(
            fingerprint=fingerprint,
            response_status=None,
            response_headers=None,
            response_body=None,
            locked_until=now + timedelta(seconds=lock_seconds),
            created_at=now,
            expires_at=now + timedelta(seconds=ttl_seconds),
        )
        .where(
            ref.where()
            & (
                (IdempotencyKey.expires_at <= now)
                | (IdempotencyKey.response_status.is_null() & (IdempotencyKey.locked_until <= now))
            )
        )
        .execute()
    )
    if retaken:
        return Claim.CLAIMED
    existing = IdempotencyKey.get(ref.where())
    if existing.fingerprint != fingerprint:
        return Claim.MISMATCH
    if existing.response_status is None:
        return Claim.IN_FLIGHT
    return StoredResponse(
        status=existing.response_status,
        headers=orjson.loads(existing.response_headers),
        body=bytes(existing.response_body),
    )


def record(ref: KeyRef, response: StoredResponse) -> None:
    (
        IdempotencyKey.update(
            response_status=response.status,
            response_headers=orjson.dumps(response.headers).decode(),
            response_body=response.body,
            locked_until=None,
        )
        .where(ref.where())
        .execute()
    )


def release(ref: KeyRef) -> None:
    """Forget a claim whose request failed: the client may try again with the key."""
    IdempotencyKey.delete().where(ref.where() & IdempotencyKey.response_status.is_null()).execute()


def purge_expired(now: datetime) -> int:
    return IdempotencyKey.delete().where(IdempotencyKey.expires_at <= now).execute()

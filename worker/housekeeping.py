"""Periodic upkeep, scheduled by the consumer."""

from huey import crontab

from rules import utc_now
from storage import idempotency
from storage.database import writing
from storage.queue import huey


@huey.periodic_task(crontab(minute="*/15"))
def purge_expired_idempotency_keys() -> int:
    """Idempotency keys live 24 hours; their stored responses go with them."""
    with writing():
        return idempotency.purge_expired(utc_now())

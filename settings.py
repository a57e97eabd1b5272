"""Configuration, read once from the environment.

Every setting has a default that runs the whole service on one machine with
an embedded SQLite database; README.md documents each variable.
"""

import math
import os
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class SettingError(SystemExit):
    """A setting that cannot be used: the process stops with a one-line message."""


def _parsed(name: str, default: object, parse):
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        return parse(raw)
    except (ValueError, ZoneInfoNotFoundError):
        raise SettingError(f"bulkreg: {name}={raw!r} is not a valid {parse.__name__}") from None


def _int(name: str, default: int) -> int:
    return _parsed(name, default, int)


def _float(name: str, default: float) -> float:
    return _parsed(name, default, float)


def _zone(name: str, default: str) -> ZoneInfo:
    def time_zone(raw: str) -> ZoneInfo:
        return ZoneInfo(raw)

    return _parsed(name, ZoneInfo(default), time_zone)


@dataclass(frozen=True)
class Settings:
    database_url: str
    # Connections each process may hold at once, and how long a thread waits
    # for one when all are in use.
    # Threads per web worker process that run the (plain `def`) handlers, so
    # database work never blocks the event loop.
    web_threads: int
    database_pool_size: int
    database_pool_timeout: float
    # A Redis URL puts the job queue on Redis; by default it lives in the database.
    huey_redis_url: str | None
    queue_name: str
    # Activities are registered once they have happened: "today" is judged
    # in the programme's own time zone.
    programme_timezone: ZoneInfo
    max_body_bytes: int
    # How long a client may take to send a request body.
    body_timeout_seconds: float
    # Load shedding, per web worker process: requests worked on at once, and
    # how long one may wait for its turn before it is answered 503.
    max_requests_in_flight: int
    max_queue_wait_seconds: float
    # Items settled per worker transaction, and per task before the task
    # hands the rest of the batch back to the queue (fairness, clean stops).
    chunk_size: int
    task_item_budget: int
    # A consumer renews its lease on a batch with every chunk; a batch with
    # pending items whose lease ran out is queued again by the reconciler.
    lease_seconds: float
    queue_grace_seconds: float
    reconcile_seconds: float
    consumer_threads: int
    consumer_max_poll_seconds: float
    # How long an Idempotency-Key and its response are kept, and how long a
    # first request with a key may run before the key counts as abandoned.
    idempotency_ttl_seconds: float
    idempotency_lock_seconds: float

    @classmethod
    def from_environ(cls) -> "Settings":
        return cls(
            database_url=os.environ.get("DATABASE_URL", "sqlite:///var/bulkreg.db"),
            web_threads=_int("WEB_THREADS", 8),
            # Enough for every handler thread of a web worker, and for a
            # consumer's threads, its reconciler and its scheduler.
            database_pool_size=_int("DATABASE_POOL_SIZE", 16),
            # Whole seconds, at least one: Peewee's pool truncates, and 0 means forever.
            database_pool_timeout=max(1, math.ceil(_float("DATABASE_POOL_TIMEOUT", 10))),
            huey_redis_url=os.environ.get("HUEY_REDIS_URL") or None,
            queue_name=os.environ.get("QUEUE_NAME", "bulkreg"),
            programme_timezone=_zone("PROGRAMME_TIMEZONE", "UTC"),
            # 1000 items with 1000-character notes fit even with every
            # character sent as a six-byte JSON escape (\u00e9).
            max_body_bytes=_int("MAX_BODY_BYTES", 8 * 1024 * 1024),
            body_timeout_seconds=_float("BODY_TIMEOUT_SECONDS", 30),
            max_requests_in_flight=_int("MAX_REQUESTS_IN_FLIGHT", 32),
            max_queue_wait_seconds=_float("MAX_QUEUE_WAIT_SECONDS", 5),
            chunk_size=_int("CHUNK_SIZE", 500),
            task_item_budget=_int("TASK_ITEM_BUDGET", 2000),
            lease_seconds=_float("LEASE_SECONDS", 30),
            queue_grace_seconds=_float("QUEUE_GRACE_SECONDS", 300),
            reconcile_seconds=_float("RECONCILE_SECONDS", 10),
            consumer_threads=_int("CONSUMER_THREADS", 2),
            consumer_max_poll_seconds=_float("CONSUMER_MAX_POLL_SECONDS", 0.1),
            idempotency_ttl_seconds=_float("IDEMPOTENCY_TTL_SECONDS", 24 * 3600),
            idempotency_lock_seconds=_float("IDEMPOTENCY_LOCK_SECONDS", 60),
        )


settings = Settings.from_environ()

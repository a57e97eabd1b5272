"""A short soak: thousands of mixed requests from parallel clients against the
configuration `make run` starts (two gunicorn workers, one consumer, SQLite).

Run with `make soak` (it is deselected from `make test`). Passes when no
request got a 5xx, every response matched the spec, and every accepted batch
settled with its counters adding up.
"""

import os
import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from storage.database import reading
from storage.models import Activity, Batch, BatchItem, BatchTally
from tests.contract import check_response
from tests.live import COLLECTION, LiveService

pytestmark = pytest.mark.soak

REQUESTS = int(os.environ.get("SOAK_REQUESTS", "4000"))
CLIENTS = int(os.environ.get("SOAK_CLIENTS", "8"))
ACTIVITY_TYPES = ["peer_session", "workshop", "one_on_one", "group_session", "training"]


class Soak:
    """Shared state of the clients: which batches exist, what came back."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.batches: list[str] = []
        self.statuses: Counter[int] = Counter()
        self.operations: Counter[str] = Counter()

    def known_batch(self, rng: random.Random) -> str:
        with self.lock:
            return rng.choice(self.batches) if self.batches else "batch-0001"

    def record(self, operation: str, response: httpx.Response) -> None:
        with self.lock:
            self.statuses[response.status_code] += 1
            self.operations[operation] += 1
            if operation == "submit" and response.status_code == 202:
                self.batches.append(response.json()["batch_id"])


def random_items(rng: random.Random) -> list[dict]:
    count = rng.choice([1, 2, 5, 20, 100, 300])
    return [
        {
            # A small pool of mentors and dates: duplicates across batches happen.
            "mentor_id": f"mentor-{rng.randrange(400)}",
            "activity_type": rng.choice(ACTIVITY_TYPES),
            "activity_date": rng.choice(["2026-03-24", "2026-06-01", "2026-11-30", "2099-01-01"]),
            "duration_minutes": rng.randrange(1, 1441),
            "notes": rng.choice([None, "soak", "x" * 500]),
        }
        for _ in range(count)
    ]


def one_request(client: httpx.Client, soak: Soak, rng: random.Random) -> None:
    roll = rng.random()
    batch = f"{COLLECTION}/{soak.known_batch(rng)}"
    if roll < 0.25:
        headers = {"Idempotency-Key": f"soak-{rng.randrange(200)}"} if rng.random() < 0.2 else {}
        body = {"coordinator_id": f"coord-{rng.randrange(5)}", "items": random_items(rng)}
        soak.record("submit", client.post(COLLECTION, json=body, headers=headers))
    elif roll < 0.55:
        soak.record("get", client.get(batch, params=rng.choice([{}, {"item_status": "failed"}])))
    elif roll < 0.70:
        params = {"page": rng.randrange(1, 5), "limit": rng.choice([5, 20, 100])}
        if rng.random() < 0.3:
            params["status"] = rng.choice(["processing", "completed", "partial", "failed"])
        soak.record("list", client.get(COLLECTION, params=params))
    elif roll < 0.80:
        soak.record("retry", client.post(f"{batch}/retry"))
    elif roll < 0.87:
        soak.record("cancel", client.post(f"{batch}/cancel"))
    elif roll < 0.95:
        etag = client.get(batch).headers.get("etag", '"0.0"')
        response = client.put(
            batch, json={"label": f"soak {rng.random()}"}, headers={"If-Match": etag}
        )
        soak.record("put", response)
    else:
        soak.record("delete", client.delete(batch))


def client_loop(base_url: str, soak: Soak, seed: int, count: int) -> None:
    rng = random.Random(seed)
    with httpx.Client(
        base_url=base_url, timeout=60, event_hooks={"response": [check_response]}
    ) as client:
        for _ in range(count):
            one_request(client, soak, rng)


def wait_until_nothing_pending(timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while True:
        with reading():
            pending = Batch.select().where(Batch.pending > 0).count()
        if pending == 0 or time.monotonic() > deadline:
            return pending
        time.sleep(0.5)


def test_soak(tmp_path):
    service = LiveService(os.environ["DATABASE_URL"], tmp_path)
    base_url = service.start_web(workers=2)
    service.start_consumer()
    soak = Soak()
    started = time.monotonic()
    try:
        with ThreadPoolExecutor(CLIENTS) as pool:
            share = REQUESTS // CLIENTS
            list(pool.map(lambda n: client_loop(base_url, soak, n, share), range(CLIENTS)))
        elapsed = time.monotonic() - started
        still_pending = wait_until_nothing_pending(timeout=120)
    finally:
        service.stop_all()

    with reading():
        batches = list(Batch.select())
        counted = Counter(
            (item.batch_id, item.status)
            for item in BatchItem.select(BatchItem.batch, BatchItem.status)
        )
        activities = Activity.select().count()
        tally = {
            (row.coordinator_id, row.status): row.batches
            for row in BatchTally.select().where(BatchTally.batches != 0)
        }
    server_errors = sum(n for status, n in soak.statuses.items() if status >= 500)
    print(
        f"\nsoak: {sum(soak.statuses.values())} requests from {CLIENTS} clients in {elapsed:.1f}s; "
        f"by status {dict(sorted(soak.statuses.items()))}; by operation {dict(soak.operations)}; "
        f"5xx: {server_errors}; batches at the end: {len(batches)}, "
        f"still pending: {still_pending}; activities: {activities}"
    )
    assert server_errors == 0
    assert still_pending == 0
    assert tally == Counter((batch.coordinator_id, batch.status) for batch in batches)
    for batch in batches:
        by_status = {
            s: counted[(batch.id, s)] for s in ("success", "failed", "pending", "cancelled")
        }
        assert (batch.completed, batch.failed, batch.pending, batch.cancelled) == (
            by_status["success"],
            by_status["failed"],
            by_status["pending"],
            by_status["cancelled"],
        )
        assert batch.completed + batch.failed + batch.cancelled == batch.total_items

"""The job queue on Redis (HUEY_REDIS_URL) while the data stays in the database.

Against a Redis server of the suite's own, started on a free loopback port
(or the one TEST_REDIS_URL names), under a queue name of the test's own.
"""

import os
import subprocess
import time
import uuid

import pytest
import redis
from huey import RedisHuey

from rules import utc_now
from storage.batches import NewItem, insert_batch, lease_expiry
from storage.database import writing
from storage.queue import huey as database_queue
from tests.invariants import check_invariants
from tests.live import COLLECTION, LiveService, checked_client, free_port, wait_until_settled


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    if os.environ.get("TEST_REDIS_URL"):
        yield os.environ["TEST_REDIS_URL"]
        return
    port = free_port()
    server = subprocess.Popen(
        [
            "redis-server",
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path_factory.mktemp("redis")),
        ],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    yield url
    server.terminate()
    server.wait(10)


@pytest.fixture
def redis_queue(redis_url):
    name = f"bulkreg-test-{uuid.uuid4().hex[:8]}"
    queue = RedisHuey(name, url=redis_url)
    queue.storage.conn.ping()
    yield queue
    queue.storage.flush_all()


@pytest.fixture
def service(tmp_path, redis_url, redis_queue):
    live = LiveService(
        os.environ["DATABASE_URL"],
        tmp_path,
        HUEY_REDIS_URL=redis_url,
        QUEUE_NAME=redis_queue.name,
        QUEUE_GRACE_SECONDS="1",
        RECONCILE_SECONDS="0.2",
    )
    yield live
    live.stop_all()


def test_batches_are_queued_on_redis_and_processed(service, redis_queue):
    with checked_client(service.start_web(workers=1)) as client:
        locations = []
        for batch in range(3):
            items = [
                {
                    "mentor_id": f"mentor-{batch}-{n}",
                    "activity_type": "one_on_one",
                    "activity_date": "2026-03-24",
                    "duration_minutes": 30,
                }
                for n in range(200)
            ]
            response = client.post(COLLECTION, json={"coordinator_id": "coord-7", "items": items})
            assert response.status_code == 202
            locations.append(response.headers["location"])
        assert redis_queue.pending_count() == 3
        with writing():
            assert database_queue.pending_count() == 0

        service.start_consumer()
        batches = [wait_until_settled(client, location) for location in locations]

    assert [b["completed"] for b in batches] == [200, 200, 200]
    check_invariants(all_settled=True)


def test_a_batch_stored_but_never_sent_to_redis_is_queued_by_the_reconciler(service):
    """As when a web process dies between committing a batch and sending its job."""
    now = utc_now()
    item = NewItem("mentor-lost", "workshop", now.date(), 30, None)
    with writing():
        number = insert_batch(
            "coord-7", None, [item], now=now, lease_until=lease_expiry(now, seconds=1)
        ).id

    with checked_client(service.start_web(workers=1)) as client:
        service.start_consumer()
        batch = wait_until_settled(client, f"{COLLECTION}/batch-{number:04d}")
    assert batch["completed"] == 1
    check_invariants(all_settled=True)

"""Consumers killed with SIGKILL mid-batch, on the real service: nothing is lost or done twice."""

import os
import time

import pytest

from tests.invariants import check_invariants, items_by_status
from tests.live import COLLECTION, LiveService, checked_client, wait_until_settled

BATCHES = 4
ITEMS_PER_BATCH = 1000
KILLS = 2


@pytest.fixture
def service(tmp_path):
    # Small chunks so a kill lands mid-batch; short leases so the reconciler
    # takes a dead consumer's batches back within the test. A kill can also
    # land between a consumer taking a job off the queue and taking the
    # batch's lease: the queue's grace period covers that, so it is short too.
    live = LiveService(
        os.environ["DATABASE_URL"],
        tmp_path,
        CHUNK_SIZE="20",
        LEASE_SECONDS="1",
        QUEUE_GRACE_SECONDS="2",
        RECONCILE_SECONDS="0.2",
    )
    yield live
    live.stop_all()


def batch_items(batch, mentors):
    """Items whose mentors overlap with other batches', some dated in the future."""
    return [
        {
            "mentor_id": f"mentor-{(batch * 300 + n) % mentors}",
            "activity_type": "workshop",
            "activity_date": "2099-01-01" if n % 50 == 0 else "2026-03-24",
            "duration_minutes": 30,
        }
        for n in range(ITEMS_PER_BATCH)
    ]


def wait_for_settled(at_least, timeout=60):
    deadline = time.monotonic() + timeout
    while (progress := items_by_status())["pending"] and time.monotonic() < deadline:
        if sum(progress.values()) - progress["pending"] >= at_least:
            return progress
        time.sleep(0.01)
    raise AssertionError(f"no progress to {at_least} settled items: {progress}")


def test_killing_consumers_mid_batch_loses_no_item_and_settles_none_twice(service):
    base_url = service.start_web(workers=1)
    total = BATCHES * ITEMS_PER_BATCH
    with checked_client(base_url) as client:
        locations = []
        for batch in range(BATCHES):
            response = client.post(
                COLLECTION,
                json={"coordinator_id": "coord-9", "items": batch_items(batch, mentors=2500)},
            )
            assert response.status_code == 202
            locations.append(response.headers["location"])

        consumer = service.start_consumer()
        for kill in range(1, KILLS + 1):
            wait_for_settled(at_least=total * kill // (KILLS + 2))
            consumer.kill()
            consumer.wait()
            # Killed mid-processing: work was left for the next consumer.
            assert items_by_status()["pending"] > 0
            consumer = service.start_consumer()

        batches = [wait_until_settled(client, location, timeout=120) for location in locations]

    assert sum(b["completed"] + b["failed"] for b in batches) == total
    facts = check_invariants(all_settled=True)
    print(
        f"\nfault injection: {BATCHES} batches, {total} items, {KILLS} consumers killed "
        f"with SIGKILL, {facts} invariant checks held"
    )

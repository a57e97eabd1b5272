"""A multi-host deployment in miniature: two web instances and three consumers, one database.

Batches go in over HTTP through both web instances, a cancel and a retry
through the other one, while three consumer processes share the work; at the
end every invariant holds. The suite runs it with a few hundred items;
`make rehearsal` runs it on PostgreSQL with REHEARSAL_ITEMS=4000 and prints
its numbers.
"""

import os
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.invariants import check_invariants
from tests.live import COLLECTION, LiveService, checked_client

ITEMS = int(os.environ.get("REHEARSAL_ITEMS", "600"))
BATCH_SIZES = [500, 120, 300, 80]
WEB_INSTANCES = 2
CONSUMERS = 3


def batch_sizes(total: int) -> list[int]:
    sizes = []
    while total > 0:
        sizes.append(min(total, BATCH_SIZES[len(sizes) % len(BATCH_SIZES)]))
        total -= sizes[-1]
    return sizes


def items(batch: int, size: int) -> list[dict]:
    """Mentors overlap between neighbouring batches; every 25th item is in the future."""
    return [
        {
            "mentor_id": f"mentor-{batch * 100 + n}",
            "activity_type": "peer_session",
            "activity_date": "2099-01-01" if n % 25 == 24 else "2026-03-24",
            "duration_minutes": 45,
            "notes": f"rehearsal batch {batch}",
        }
        for n in range(size)
    ]


@pytest.fixture
def service(tmp_path):
    # Chunks smaller than most batches, so large batches are shared out.
    live = LiveService(os.environ["DATABASE_URL"], tmp_path, CHUNK_SIZE="100")
    yield live
    live.stop_all()


def wait_until_nothing_processing(client, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while client.get(COLLECTION, params={"status": "processing"}).json()["pagination"]["total"]:
        assert time.monotonic() < deadline, "batches still processing"
        time.sleep(0.1)


def test_two_web_instances_and_three_consumers_share_thousands_of_items(service, tmp_path):
    webs = [service.start_web(workers=1) for _ in range(WEB_INSTANCES)]
    for _ in range(CONSUMERS):
        service.start_consumer()
    clients = [checked_client(url) for url in webs]
    sizes = batch_sizes(ITEMS)

    def submit(batch: int) -> str:
        response = clients[batch % WEB_INSTANCES].post(
            COLLECTION,
            json={"coordinator_id": f"coord-{batch % 3}", "items": items(batch, sizes[batch])},
        )
        assert response.status_code == 202, response.text
        return response.headers["location"]

    started = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        locations = list(pool.map(submit, range(len(sizes))))
    # Each follow-up through the web instance that did not take the batch.
    cancel = clients[(len(sizes) - 1 + 1) % WEB_INSTANCES].post(f"{locations[-1]}/cancel")
    assert cancel.status_code in (200, 409), cancel.text
    wait_until_nothing_processing(clients[0])
    retry = clients[1].post(f"{locations[0]}/retry")
    assert retry.status_code == 202, retry.text
    wait_until_nothing_processing(clients[1])
    seconds = time.monotonic() - started

    batches = [
        clients[n % WEB_INSTANCES].get(location).json() for n, location in enumerate(locations)
    ]
    for client in clients:
        client.close()
    assert sum(b["total_items"] for b in batches) == ITEMS
    assert batches[0]["items"][24]["attempts"] == 2
    facts = check_invariants(all_settled=True)
    jobs = [
        (tmp_path / f"consumer-{n}.log").read_text().count(" executed in ")
        for n in range(WEB_INSTANCES, WEB_INSTANCES + CONSUMERS)
    ]
    print(
        f"\nrehearsal: {ITEMS} items in {len(sizes)} batches through {WEB_INSTANCES} web "
        f"instances, {CONSUMERS} consumers (jobs run: {jobs}), settled in {seconds:.1f} s "
        f"(submit to last item, one cancel and one retry included); "
        f"{facts} invariant checks held"
    )

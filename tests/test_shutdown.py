"""Stopping the real processes: consumers mid-batch, gunicorn mid-request."""

import json
import os
import signal
import socket
import time
from urllib.parse import urlparse

import pytest

from storage.database import reading
from storage.models import Batch
from tests.invariants import check_invariants, items_by_status
from tests.live import COLLECTION, LiveService, checked_client, wait_until_settled


@pytest.fixture
def service(tmp_path):
    # Leases and the reconciler far beyond the test: only what the stopping
    # consumer queued can bring its batch to an end.
    live = LiveService(
        os.environ["DATABASE_URL"],
        tmp_path,
        CHUNK_SIZE="10",
        TASK_ITEM_BUDGET="100000",
        LEASE_SECONDS="600",
        QUEUE_GRACE_SECONDS="600",
        RECONCILE_SECONDS="600",
    )
    yield live
    live.stop_all()


BATCHES = 3


def submit_large_batch(client, batch: int) -> str:
    items = [
        {
            "mentor_id": f"mentor-{batch}-{n}",
            "activity_type": "training",
            "activity_date": "2026-03-24",
            "duration_minutes": 60,
        }
        for n in range(1000)
    ]
    response = client.post(COLLECTION, json={"coordinator_id": "coord-5", "items": items})
    assert response.status_code == 202
    return response.headers["location"]


def wait_for_first_items_settled():
    deadline = time.monotonic() + 30
    while items_by_status()["pending"] == BATCHES * 1000:
        assert time.monotonic() < deadline, "the consumer never started on the batch"
        time.sleep(0.005)


@pytest.mark.parametrize(
    "stop_signal",
    [signal.SIGINT, signal.SIGTERM],
    ids=["SIGINT finishes the chunk", "SIGTERM abandons the chunk"],
)
def test_a_consumer_stopped_mid_batch_leaves_the_rest_queued(service, stop_signal):
    with checked_client(service.start_web(workers=1)) as client:
        locations = [submit_large_batch(client, batch) for batch in range(BATCHES)]
        consumer = service.start_consumer()
        wait_for_first_items_settled()

        assert service.stop(consumer, stop_signal) == 0
        # It stopped without working through the batch, and queued what is left.
        assert items_by_status()["pending"] > 0
        check_invariants(all_settled=False)

        service.start_consumer()
        batches = [wait_until_settled(client, location) for location in locations]
    assert [batch["completed"] for batch in batches] == [1000] * BATCHES
    check_invariants(all_settled=True)


def test_gunicorn_stopped_mid_request_completes_it(service):
    base_url = service.start_web(workers=1)
    address = urlparse(base_url)
    body = json.dumps(
        {
            "coordinator_id": "coord-5",
            "items": [
                {
                    "mentor_id": "mentor-1",
                    "activity_type": "workshop",
                    "activity_date": "2026-03-24",
                    "duration_minutes": 60,
                }
            ],
        }
    ).encode()
    with socket.create_connection((address.hostname, address.port), timeout=30) as sock:
        # The server answers "100 Continue" once the application reads the
        # body: from then on the request is in flight.
        sock.sendall(
            f"POST {COLLECTION} HTTP/1.1\r\nHost: {address.netloc}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            "Expect: 100-continue\r\n\r\n".encode()
        )
        assert sock.recv(100).startswith(b"HTTP/1.1 100")

        service.web[base_url].send_signal(signal.SIGTERM)
        wait_until_refused(address.hostname, address.port)
        sock.sendall(body)
        response = receive_all(sock)

    assert response.startswith(b"HTTP/1.1 202"), response
    assert service.web[base_url].wait(timeout=30) == 0
    with reading():
        assert Batch.select().count() == 1


def wait_until_refused(host: str, port: int) -> None:
    """Until the server takes no new connection: it has begun to shut down."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection((host, port), timeout=1).close()
        except ConnectionRefusedError:
            return
        time.sleep(0.01)
    raise AssertionError("the server kept accepting connections after SIGTERM")


def receive_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)

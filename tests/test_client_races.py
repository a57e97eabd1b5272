"""Races between clients, against the real web tier (two gunicorn workers)."""

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from storage.database import reading
from storage.models import Batch
from tests.live import COLLECTION, LiveService

ITEM = {
    "mentor_id": "mentor-race",
    "activity_type": "workshop",
    "activity_date": "2026-03-24",
    "duration_minutes": 30,
}
CLIENTS = 16


@pytest.fixture(scope="module")
def base_url(tmp_path_factory):
    live = LiveService(os.environ["DATABASE_URL"], tmp_path_factory.mktemp("race"))
    yield live.start_web(workers=2)
    live.stop_all()


def all_at_once(request, count=CLIENTS):
    """Send `count` requests as close together as threads allow; their responses."""
    barrier = threading.Barrier(count)

    def send(_):
        with httpx.Client(timeout=30) as client:
            barrier.wait()
            return request(client)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(send, range(count)))


def test_parallel_submits_with_one_idempotency_key_create_one_batch(base_url):
    body = {"coordinator_id": "coord-race", "items": [ITEM]}
    responses = all_at_once(
        lambda client: client.post(
            f"{base_url}{COLLECTION}", json=body, headers={"Idempotency-Key": "race-key"}
        )
    )
    statuses = [response.status_code for response in responses]
    assert set(statuses) <= {202, 409}, statuses
    accepted = {
        response.json()["batch_id"] for response in responses if response.status_code == 202
    }
    assert len(accepted) == 1
    with reading():
        assert Batch.select().where(Batch.coordinator_id == "coord-race").count() == 1


def test_racing_puts_with_one_etag_let_exactly_one_win(base_url):
    with httpx.Client(base_url=base_url) as client:
        created = client.post(COLLECTION, json={"coordinator_id": "coord-put", "items": [ITEM]})
        location = created.headers["location"]
        etag = client.get(location).headers["etag"]

    responses = all_at_once(
        lambda client: client.put(
            f"{base_url}{location}",
            json={"label": f"label-{threading.get_ident()}"},
            headers={"If-Match": etag},
        )
    )
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] + [412] * (CLIENTS - 1)
    winner = next(response for response in responses if response.status_code == 200)
    with httpx.Client(base_url=base_url) as client:
        assert client.get(location).json()["label"] == winner.json()["label"]

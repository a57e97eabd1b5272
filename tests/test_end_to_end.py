"""The real gunicorn and the real consumer, as separate processes, over HTTP."""

import os

import pytest

from tests.live import COLLECTION, LiveService, checked_client, wait_until_settled

PAST = "2026-03-24"


def item(mentor, activity_date=PAST, activity_type="peer_session"):
    return {
        "mentor_id": mentor,
        "activity_type": activity_type,
        "activity_date": activity_date,
        "duration_minutes": 45,
        "notes": "end-to-end",
    }


@pytest.fixture
def service(tmp_path):
    live = LiveService(os.environ["DATABASE_URL"], tmp_path)
    yield live
    live.stop_all()


def test_a_batch_goes_through_the_real_service(service):
    base_url = service.start_web(workers=2)
    consumer = service.start_consumer()
    with checked_client(base_url) as client:
        response = client.post(
            COLLECTION,
            json={
                "coordinator_id": "coord-119",
                "label": "e2e",
                "items": [
                    item("mentor-e2e-1"),
                    item("mentor-e2e-2"),
                    item("mentor-e2e-1"),  # in-batch duplicate: the first one wins
                    item("mentor-e2e-3", activity_date="2099-01-01"),
                ],
            },
        )
        assert response.status_code == 202
        location = response.headers["location"]

        batch = wait_until_settled(client, location)
        assert batch["status"] == "partial"
        assert [i["status"] for i in batch["items"]] == ["success", "success", "failed", "failed"]
        assert [i.get("error_code") for i in batch["items"]] == [
            None,
            None,
            "duplicate_activity",
            "future_date",
        ]
        assert (batch["completed"], batch["failed"], batch["pending"]) == (2, 2, 0)
        assert batch["completed_at"] is not None

        retry = client.post(f"{location}/retry")
        assert retry.status_code == 202
        assert retry.json()["retried_items"] == 2
        batch = wait_until_settled(client, location)
        assert [i["attempts"] for i in batch["items"]] == [1, 1, 2, 2]
        assert [i["status"] for i in batch["items"]] == ["success", "success", "failed", "failed"]

        # With the consumer stopped, a new batch stays pending: cancel it.
        service.stop(consumer)
        doubled = f"{COLLECTION}/api/v1/bulk-registrations"
        pending = client.post(
            doubled, json={"coordinator_id": "coord-119", "items": [item("mentor-e2e-4")] * 1}
        )
        cancelled = client.post(f"{pending.headers['location']}/cancel")
        assert cancelled.status_code == 200
        assert cancelled.json()["cancelled_items"] == 1

        service.start_consumer()
        batch = wait_until_settled(client, pending.headers["location"])
        assert batch["status"] == "cancelled"
        assert batch["items"][0]["status"] == "cancelled"

        assert client.delete(location).status_code == 200
        assert client.get(location).status_code == 404
        listed = client.get(COLLECTION).json()
        assert [b["batch_id"] for b in listed["data"]] == [batch["batch_id"]]

"""Idempotency-Key on submit and retry."""

from datetime import timedelta

import pytest

import services
from handlers.idempotency import fingerprint
from rules import utc_now
from storage.database import reading, writing
from storage.models import Batch, IdempotencyKey

BASE = "/api/v1/bulk-registrations"
ITEM = {
    "mentor_id": "mentor-1",
    "activity_type": "workshop",
    "activity_date": "2026-03-24",
    "duration_minutes": 30,
}
BODY = {"coordinator_id": "coord-1", "items": [ITEM]}


def submit(client, key, body=BODY):
    return client.post(BASE, json=body, headers={"Idempotency-Key": key})


def batch_count():
    with reading():
        return Batch.select().count()


def test_a_repeated_submit_gets_the_first_response_and_creates_nothing(client):
    first = submit(client, "key-1")
    again = submit(client, "key-1")
    assert first.status_code == again.status_code == 202
    assert again.json() == first.json()
    assert again.headers["location"] == first.headers["location"]
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert batch_count() == 1


def test_the_same_key_with_another_body_is_422(client):
    submit(client, "key-1")
    other = submit(client, "key-1", {**BODY, "coordinator_id": "coord-2"})
    assert other.status_code == 422
    assert other.headers["content-type"] == "application/problem+json"
    assert batch_count() == 1


def test_body_fingerprints_ignore_key_order_and_whitespace(client):
    submit(client, "key-1")
    reordered = client.post(
        BASE,
        content=b'{"items": [%s], "coordinator_id": "coord-1"}'
        % b'{"duration_minutes":30,"activity_date":"2026-03-24",'
        b'"activity_type":"workshop","mentor_id":"mentor-1"}',
        headers={"Idempotency-Key": "key-1", "Content-Type": "application/json"},
    )
    assert reordered.status_code == 202
    assert reordered.headers["idempotent-replayed"] == "true"


def test_different_keys_are_different_requests(client):
    submit(client, "key-1")
    assert "idempotent-replayed" not in submit(client, "key-2").headers
    assert batch_count() == 2


def claimed_earlier(key: str, *, lock_left: timedelta) -> None:
    """A first request with this key and BODY that is (or was) still running."""
    with writing():
        IdempotencyKey.create(
            operation="submitBatch",
            scope="",
            key=key,
            fingerprint=fingerprint(BODY),
            locked_until=utc_now() + lock_left,
            created_at=utc_now() - timedelta(minutes=5),
            expires_at=utc_now() + timedelta(hours=24),
        )


def test_a_key_still_in_flight_is_409(client):
    claimed_earlier("key-1", lock_left=timedelta(seconds=60))
    response = submit(client, "key-1")
    assert response.status_code == 409
    assert "still being processed" in response.json()["detail"]
    assert batch_count() == 0


def test_an_abandoned_claim_can_be_taken_over_after_its_lock_runs_out(client):
    claimed_earlier("key-1", lock_left=timedelta(seconds=-1))
    assert submit(client, "key-1").status_code == 202
    assert batch_count() == 1


def test_an_expired_key_is_a_new_request(client):
    submit(client, "key-1")
    with writing():
        IdempotencyKey.update(expires_at=utc_now() - timedelta(seconds=1)).execute()
    again = submit(client, "key-1")
    assert again.status_code == 202
    assert "idempotent-replayed" not in again.headers
    assert batch_count() == 2


def test_a_schema_refusal_is_not_kept(client):
    refused = client.post(BASE, json={"coordinator_id": "c"}, headers={"Idempotency-Key": "k"})
    assert refused.status_code == 400
    assert submit(client, "k").status_code == 202


def test_a_failed_request_releases_its_key(client, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(services, "submit_batch", broken)
    assert submit(client, "key-1").status_code == 500
    monkeypatch.undo()
    assert submit(client, "key-1").status_code == 202
    assert batch_count() == 1


@pytest.mark.parametrize("key", ["x" * 256, "has space", "tab\there", ""])
def test_a_malformed_key_is_400(client, key):
    assert submit(client, key).status_code == 400
    assert batch_count() == 0


def test_a_key_of_255_characters_is_fine(client):
    assert submit(client, "k" * 255).status_code == 202


def test_a_repeated_retry_retries_once(client, process):
    batch_id = client.post(BASE, json={**BODY, "items": [ITEM, ITEM]}).json()["batch_id"]
    process()
    headers = {"Idempotency-Key": "retry-1"}
    first = client.post(f"{BASE}/{batch_id}/retry", headers=headers)
    assert first.status_code == 202
    process()
    again = client.post(f"{BASE}/{batch_id}/retry", headers=headers)
    assert again.status_code == 202
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    batch = client.get(f"{BASE}/{batch_id}").json()
    assert batch["items"][1]["attempts"] == 2  # retried once, not twice


def test_a_retry_refusal_is_replayed_too(client):
    batch_id = client.post(BASE, json=BODY).json()["batch_id"]
    headers = {"Idempotency-Key": "retry-1"}
    first = client.post(f"{BASE}/{batch_id}/retry", headers=headers)
    assert first.status_code == 409
    again = client.post(f"{BASE}/{batch_id}/retry", headers=headers)
    assert again.status_code == 409
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"


def test_retry_keys_are_scoped_to_their_batch(client, process):
    first = client.post(BASE, json={**BODY, "items": [ITEM, ITEM]}).json()["batch_id"]
    second = client.post(BASE, json={**BODY, "items": [ITEM]}).json()["batch_id"]
    process()
    headers = {"Idempotency-Key": "same-key"}
    assert client.post(f"{BASE}/{first}/retry", headers=headers).status_code == 202
    assert client.post(f"{BASE}/{second}/retry", headers=headers).status_code == 202


def test_expired_keys_are_purged_by_the_periodic_task(client):
    from worker.housekeeping import purge_expired_idempotency_keys

    submit(client, "old")
    submit(client, "fresh")
    with writing():
        IdempotencyKey.update(expires_at=utc_now() - timedelta(seconds=1)).where(
            IdempotencyKey.key == "old"
        ).execute()
    assert purge_expired_idempotency_keys.call_local() == 1
    with reading():
        assert [k.key for k in IdempotencyKey.select()] == ["fresh"]


def test_a_failed_if_match_frees_the_key_for_the_corrected_request(client, process):
    batch_id = client.post(BASE, json={**BODY, "items": [ITEM, ITEM]}).json()["batch_id"]
    process()
    stale = client.post(
        f"{BASE}/{batch_id}/retry", headers={"Idempotency-Key": "r1", "If-Match": '"1.1"'}
    )
    assert stale.status_code == 412
    current = client.get(f"{BASE}/{batch_id}").headers["etag"]
    corrected = client.post(
        f"{BASE}/{batch_id}/retry", headers={"Idempotency-Key": "r1", "If-Match": current}
    )
    assert corrected.status_code == 202
    assert "idempotent-replayed" not in corrected.headers


def test_racing_requests_take_over_an_expired_key_exactly_once(client, monkeypatch):
    import time
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    from storage import idempotency
    from storage.idempotency import Claim, KeyRef

    submit(client, "old-key")
    with writing():
        IdempotencyKey.update(expires_at=utc_now() - timedelta(seconds=1)).execute()

    # Widen the race: whoever reads the key holds on before acting on what it read.
    read = IdempotencyKey.get.__func__

    def slow_read(cls, *args, **kwargs):
        found = read(cls, *args, **kwargs)
        time.sleep(0.2)
        return found

    monkeypatch.setattr(IdempotencyKey, "get", classmethod(slow_read))
    ref = KeyRef("submitBatch", "", "old-key")
    barrier = Barrier(8)

    def claim(_):
        barrier.wait()
        with writing():
            return idempotency.claim(
                ref, fingerprint(BODY), now=utc_now(), lock_seconds=60, ttl_seconds=3600
            )

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(claim, range(8)))
    assert outcomes.count(Claim.CLAIMED) == 1
    assert outcomes.count(Claim.IN_FLIGHT) == 7


def test_a_replay_points_under_the_base_path_of_the_repeated_request(client):
    first = submit(client, "key-1")
    doubled = "/api/v1/bulk-registrations/api/v1/bulk-registrations"
    again = client.post(doubled, json=BODY, headers={"Idempotency-Key": "key-1"})
    assert again.headers["idempotent-replayed"] == "true"
    batch_id = first.json()["batch_id"]
    assert first.headers["location"] == f"{BASE}/{batch_id}"
    assert again.headers["location"] == f"{doubled}/{batch_id}"

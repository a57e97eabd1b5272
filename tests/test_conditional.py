"""ETag and If-Match: changes only to the version the client saw."""

import pytest

BASE = "/api/v1/bulk-registrations"
ITEM = {
    "mentor_id": "mentor-1",
    "activity_type": "workshop",
    "activity_date": "2026-03-24",
    "duration_minutes": 30,
}


@pytest.fixture
def batch(client, process):
    """A settled batch with one success and one failure, and its current ETag."""
    batch_id = client.post(BASE, json={"coordinator_id": "c", "items": [ITEM, ITEM]}).json()[
        "batch_id"
    ]
    process()
    return batch_id, client.get(f"{BASE}/{batch_id}").headers["etag"]


def test_put_with_the_current_etag_succeeds_and_returns_the_new_one(client, batch):
    batch_id, etag = batch
    response = client.put(f"{BASE}/{batch_id}", json={"label": "x"}, headers={"If-Match": etag})
    assert response.status_code == 200
    assert response.headers["etag"] != etag
    assert response.headers["etag"] == client.get(f"{BASE}/{batch_id}").headers["etag"]


def test_put_with_a_stale_etag_is_412_and_changes_nothing(client, batch):
    batch_id, etag = batch
    client.put(f"{BASE}/{batch_id}", json={"label": "first"})
    stale = client.put(f"{BASE}/{batch_id}", json={"label": "second"}, headers={"If-Match": etag})
    assert stale.status_code == 412
    assert stale.headers["content-type"] == "application/problem+json"
    assert stale.headers["etag"] == client.get(f"{BASE}/{batch_id}").headers["etag"]
    assert client.get(f"{BASE}/{batch_id}").json()["label"] == "first"


@pytest.mark.parametrize(
    ("if_match", "status"),
    [
        ("*", 200),
        ('"0.0", {etag}', 200),
        ("W/{etag}", 412),
        ('"0.0"', 412),
        ("garbage", 412),
    ],
)
def test_if_match_forms(client, batch, if_match, status):
    batch_id, etag = batch
    headers = {"If-Match": if_match.format(etag=etag)}
    assert client.put(f"{BASE}/{batch_id}", json={"label": "x"}, headers=headers).status_code == (
        status
    )


def test_delete_with_a_stale_etag_is_412_and_keeps_the_batch(client, batch):
    batch_id, _ = batch
    response = client.delete(f"{BASE}/{batch_id}", headers={"If-Match": '"1.0"'})
    assert response.status_code == 412
    assert client.get(f"{BASE}/{batch_id}").status_code == 200


def test_delete_with_the_current_etag_deletes(client, batch):
    batch_id, etag = batch
    assert client.delete(f"{BASE}/{batch_id}", headers={"If-Match": etag}).status_code == 200


def test_retry_and_cancel_honour_if_match(client, batch):
    batch_id, etag = batch
    stale = '"1.0"'
    assert client.post(f"{BASE}/{batch_id}/retry", headers={"If-Match": stale}).status_code == 412
    retried = client.post(f"{BASE}/{batch_id}/retry", headers={"If-Match": etag})
    assert retried.status_code == 202
    cancel_stale = client.post(f"{BASE}/{batch_id}/cancel", headers={"If-Match": etag})
    assert cancel_stale.status_code == 412
    current = retried.headers["etag"]
    assert (
        client.post(f"{BASE}/{batch_id}/cancel", headers={"If-Match": current}).status_code == 200
    )


def test_if_match_on_an_unknown_batch_is_404(client):
    response = client.put(f"{BASE}/batch-9999", json={"label": "x"}, headers={"If-Match": "*"})
    assert response.status_code == 404


def test_several_if_match_fields_are_one_list(client, batch):
    batch_id, etag = batch
    headers = [("If-Match", '"0.0"'), ("If-Match", etag)]
    response = client.put(f"{BASE}/{batch_id}", json={"label": "x"}, headers=headers)
    assert response.status_code == 200

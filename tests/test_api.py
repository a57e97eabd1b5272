"""Every operation in-process: success shapes and refusals, under both base paths.

Jobs are run by `process()`, which takes them off the real queue as a
consumer would.
"""

import json
from datetime import date

import pytest

import worker.tasks
from settings import settings
from storage.database import reading
from storage.models import Activity

CANONICAL = "/api/v1/bulk-registrations"
DOUBLED = "/api/v1/bulk-registrations/api/v1/bulk-registrations"
PAST = "2026-03-24"
FUTURE = "2099-01-01"


@pytest.fixture(params=[CANONICAL, DOUBLED], ids=["canonical", "doubled"])
def base(request):
    return request.param


def item(mentor="mentor-482", activity_type="peer_session", activity_date=PAST, **extra):
    return {
        "mentor_id": mentor,
        "activity_type": activity_type,
        "activity_date": activity_date,
        "duration_minutes": 60,
        **extra,
    }


def submit(client, base, items, coordinator="coord-119", **extra):
    response = client.post(base, json={"coordinator_id": coordinator, "items": items, **extra})
    assert response.status_code == 202, response.text
    return response.json()["batch_id"]


def fetch(client, base, batch_id, **params):
    response = client.get(f"{base}/{batch_id}", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def assert_problem(response, status):
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert body["title"]
    return body


# --- submit -------------------------------------------------------------------


def test_submit_accepts_the_contract_example_and_queues_it(client, base, process):
    response = client.post(
        base,
        json={
            "coordinator_id": "coord-119",
            "items": [
                item("mentor-482", notes="Monday group session"),
                item("mentor-510", notes="Monday group session"),
            ],
        },
    )
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "processing"
    assert body["total_items"] == 2
    assert body["coordinator_id"] == "coord-119"
    assert response.headers["location"] == f"{base}/{body['batch_id']}"
    assert int(response.headers["retry-after"]) >= 1

    before = fetch(client, base, body["batch_id"])
    assert [i["status"] for i in before["items"]] == ["pending", "pending"]
    assert before["completed_at"] is None

    assert process() == 1
    after = fetch(client, base, body["batch_id"])
    assert after["status"] == "completed"
    assert (after["completed"], after["failed"], after["pending"]) == (2, 0, 0)
    assert [i["item_id"] for i in after["items"]] == ["item-001", "item-002"]
    assert all(i["activity_id"].startswith("pa-") for i in after["items"])
    assert after["items"][0]["notes"] == "Monday group session"
    assert after["completed_at"] is not None


def test_in_batch_duplicate_fails_the_later_item_and_the_earlier_one_wins(client, base, process):
    batch_id = submit(client, base, [item("mentor-1"), item("mentor-2"), item("mentor-1")])
    process()
    batch = fetch(client, base, batch_id)
    first, second, third = batch["items"]
    assert first["status"] == "success"
    assert second["status"] == "success"
    assert third["status"] == "failed"
    assert third["error"] == "Duplicate activity on this date"
    assert third["error_code"] == "duplicate_activity"
    assert "activity_id" not in third
    assert batch["status"] == "partial"


def test_existing_activity_fails_a_later_batch_item(client, base, process):
    submit(client, base, [item("mentor-590", "workshop")])
    process()
    items = [item("mentor-590", "workshop"), item("mentor-590", "training")]
    batch_id = submit(client, base, items)
    process()
    batch = fetch(client, base, batch_id)
    assert [i["status"] for i in batch["items"]] == ["failed", "success"]
    assert batch["items"][0]["error_code"] == "duplicate_activity"
    with reading():
        assert Activity.select().where(Activity.mentor_id == "mentor-590").count() == 2


def test_future_date_fails_with_its_reason(client, base, process):
    batch_id = submit(client, base, [item(activity_date=FUTURE)])
    process()
    batch = fetch(client, base, batch_id)
    assert batch["status"] == "failed"
    assert batch["items"][0]["error_code"] == "future_date"
    assert batch["items"][0]["error"] == "Activity date is in the future"


def test_submit_keeps_the_label(client, base):
    response = client.post(
        base, json={"coordinator_id": "coord-1", "label": "March", "items": [item()]}
    )
    assert response.json()["label"] == "March"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"coordinator_id": "coord-1"},
        {"coordinator_id": "coord-1", "items": []},
        {"coordinator_id": "coord-1", "items": [item()] * 1001},
        {"coordinator_id": "coord 1", "items": [item()]},
        {"coordinator_id": "coord-1", "items": [item()], "extra": 1},
        {"coordinator_id": "coord-1", "items": [item(activity_type="party")]},
        {"coordinator_id": "coord-1", "items": [item(activity_date="2026-02-30")]},
        {"coordinator_id": "coord-1", "items": [item(activity_date="20260101")]},
        {"coordinator_id": "coord-1", "items": [item(duration_minutes=0)]},
        {"coordinator_id": "coord-1", "items": [item(duration_minutes=1441)]},
        {"coordinator_id": "coord-1", "items": [item(duration_minutes="60")]},
        {"coordinator_id": "coord-1", "items": [item(notes="x" * 1001)]},
        {"coordinator_id": "coord-1", "items": [item(notes="bell\x07")]},
        {"coordinator_id": "coord-1", "items": [item(colour="red")]},
        {"coordinator_id": "coord-1", "items": [item()], "label": ""},
        {"coordinator_id": "coord-1", "items": [item()], "label": "x" * 201},
    ],
    ids=[
        "empty",
        "no-items",
        "zero-items",
        "1001-items",
        "bad-coordinator",
        "unknown-field",
        "unknown-activity-type",
        "impossible-date",
        "basic-date-format",
        "zero-duration",
        "over-a-day",
        "duration-as-string",
        "notes-too-long",
        "control-character",
        "unknown-item-field",
        "empty-label",
        "label-too-long",
    ],
)
def test_submit_refuses_what_the_schema_refuses_and_stores_nothing(client, base, body):
    assert_problem(client.post(base, json=body), 400)
    assert client.get(base).json()["pagination"]["total"] == 0


def test_submit_accepts_a_thousand_items_with_full_notes(client, base):
    items = [item(f"mentor-{n}", notes="n" * 1000) for n in range(1000)]
    batch_id = submit(client, base, items)
    assert fetch(client, base, batch_id)["total_items"] == 1000


def test_submit_refuses_malformed_json(client, base):
    response = client.post(
        base, content=b'{"coordinator_id": ', headers={"content-type": "application/json"}
    )
    assert_problem(response, 400)


def test_submit_refuses_a_body_that_is_not_json(client, base):
    headers = {"content-type": "text/plain"}
    response = client.post(base, content=b"coordinator_id=1", headers=headers)
    assert_problem(response, 415)


def test_submit_refuses_a_streamed_body_as_soon_as_it_goes_over_the_limit(client, base):
    def chunks():
        yield b'{"coordinator_id": "c", "notes": "'
        for _ in range(settings.max_body_bytes // 100_000 + 2):
            yield b"x" * 100_000

    response = client.post(base, content=chunks(), headers={"content-type": "application/json"})
    assert_problem(response, 413)


def test_submit_accepts_a_streamed_body_under_the_limit(client, base):
    body = json.dumps({"coordinator_id": "coord-1", "items": [item()]}).encode()

    def chunks():
        yield from (body[i : i + 10] for i in range(0, len(body), 10))

    response = client.post(base, content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 202


def test_submit_refuses_a_body_over_the_size_limit(client, base):
    response = client.post(
        base,
        content=b"[" + b" " * settings.max_body_bytes + b"]",
        headers={"content-type": "application/json"},
    )
    assert_problem(response, 413)


# --- get ----------------------------------------------------------------------


def test_get_filters_items_but_counts_the_whole_batch(client, base, process):
    batch_id = submit(client, base, [item("m1"), item("m1"), item("m2", activity_date=FUTURE)])
    process()
    failed = fetch(client, base, batch_id, item_status="failed")
    assert [i["item_id"] for i in failed["items"]] == ["item-002", "item-003"]
    assert failed["total_items"] == 3
    assert failed["completed"] == 1


def test_get_answers_404_for_an_unknown_batch(client, base):
    body = assert_problem(client.get(f"{base}/batch-9999"), 404)
    assert "batch-9999" in body["detail"]


@pytest.mark.parametrize("bad_id", ["batch-42", "batch-00042", "42", "batch-abcd", "item-001"])
def test_get_answers_400_for_a_malformed_batch_id(client, base, bad_id):
    assert_problem(client.get(f"{base}/{bad_id}"), 400)


def test_get_refuses_an_unknown_item_status(client, base):
    batch_id = submit(client, base, [item()])
    assert_problem(client.get(f"{base}/{batch_id}", params={"item_status": "done"}), 400)


def test_get_carries_an_etag_that_changes_when_the_batch_changes(client, base, process):
    batch_id = submit(client, base, [item()])
    first = client.get(f"{base}/{batch_id}").headers["etag"]
    assert (
        first == client.get(f"{base}/{batch_id}", params={"item_status": "pending"}).headers["etag"]
    )
    process()
    assert client.get(f"{base}/{batch_id}").headers["etag"] != first


# --- list ---------------------------------------------------------------------


def test_list_is_newest_first_with_pagination_and_links(client, base):
    ids = [submit(client, base, [item(f"m{n}")]) for n in range(5)]
    response = client.get(base, params={"limit": 2, "page": 2})
    assert response.status_code == 200
    body = response.json()
    assert [b["batch_id"] for b in body["data"]] == [ids[2], ids[1]]
    assert body["pagination"] == {"page": 2, "limit": 2, "total": 5}
    links = response.headers["link"]
    assert f'<{base}?page=3&limit=2>; rel="next"' in links
    assert f'<{base}?page=1&limit=2>; rel="prev"' in links
    assert f'<{base}?page=3&limit=2>; rel="last"' in links


def test_list_filters_by_status_and_coordinator(client, base, process):
    done = submit(client, base, [item("m1")], coordinator="coord-a")
    process()
    pending = submit(client, base, [item("m2")], coordinator="coord-b")
    processing = client.get(base, params={"status": "processing"}).json()
    assert [b["batch_id"] for b in processing["data"]] == [pending]
    mine = client.get(base, params={"coordinator_id": "coord-a"})
    assert [b["batch_id"] for b in mine.json()["data"]] == [done]
    assert "coordinator_id=coord-a" in mine.headers["link"]


def test_list_page_past_the_end_is_empty_with_the_true_total(client, base):
    submit(client, base, [item()])
    body = client.get(base, params={"page": 7}).json()
    assert body["data"] == []
    assert body["pagination"]["total"] == 1


def test_list_summary_has_the_contract_fields(client, base, process):
    submit(client, base, [item("m1"), item("m1")])
    process()
    summary = client.get(base).json()["data"][0]
    assert summary["status"] == "partial"
    assert (summary["total_items"], summary["completed"], summary["failed"]) == (2, 1, 1)
    assert summary["submitted_at"].endswith("Z")


@pytest.mark.parametrize(
    "params",
    [{"page": 0}, {"limit": 0}, {"limit": 101}, {"page": "x"}, {"status": "done"}, {"sort": "asc"}],
)
def test_list_refuses_bad_parameters(client, base, params):
    assert_problem(client.get(base, params=params), 400)


# --- update -------------------------------------------------------------------


def test_put_relabels_a_batch(client, base, process):
    batch_id = submit(client, base, [item()])
    process()
    response = client.put(f"{base}/{batch_id}", json={"label": "Spring"})
    assert response.status_code == 200
    body = response.json()
    assert body["label"] == "Spring"
    assert body["status"] == "completed"
    assert response.headers["etag"]
    assert fetch(client, base, batch_id)["label"] == "Spring"
    assert client.put(f"{base}/{batch_id}", json={"label": None}).json()["label"] is None


def test_put_cancels_a_batch_with_a_reason(client, base):
    batch_id = submit(client, base, [item("m1"), item("m2")])
    response = client.put(
        f"{base}/{batch_id}",
        json={"status": "cancelled", "cancellation_reason": "Incorrect mentor list uploaded"},
    )
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "cancelled"
    assert body["cancellation_reason"] == "Incorrect mentor list uploaded"
    assert (body["cancelled"], body["pending"]) == (2, 0)
    batch = fetch(client, base, batch_id)
    assert {i["status"] for i in batch["items"]} == {"cancelled"}
    assert batch["completed_at"] is not None


def test_put_is_all_or_nothing(client, base, process):
    batch_id = submit(client, base, [item()])
    process()
    response = client.put(f"{base}/{batch_id}", json={"label": "New", "status": "cancelled"})
    assert_problem(response, 409)
    assert fetch(client, base, batch_id)["label"] is None


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"status": "completed"},
        {"status": "processing"},
        {"cancellation_reason": "no status"},
        {"label": "x", "colour": "red"},
        {"label": 5},
        {"cancellation_reason": "x" * 501, "status": "cancelled"},
    ],
)
def test_put_refuses_what_the_schema_refuses(client, base, body):
    batch_id = submit(client, base, [item()])
    assert_problem(client.put(f"{base}/{batch_id}", json=body), 400)
    assert fetch(client, base, batch_id)["status"] == "processing"


def test_put_answers_404_for_an_unknown_batch(client, base):
    assert_problem(client.put(f"{base}/batch-9999", json={"label": "x"}), 404)


# --- delete -------------------------------------------------------------------


def test_delete_removes_the_batch_but_keeps_its_activities(client, base, process):
    batch_id = submit(client, base, [item("m1"), item("m2")])
    process()
    response = client.delete(f"{base}/{batch_id}")
    assert response.status_code == 200
    assert response.json() == {"success": True, "deleted_batch_id": batch_id}
    assert_problem(client.get(f"{base}/{batch_id}"), 404)
    assert_problem(client.delete(f"{base}/{batch_id}"), 404)
    with reading():
        assert Activity.select().count() == 2


def test_delete_is_refused_while_items_are_pending(client, base):
    batch_id = submit(client, base, [item()])
    body = assert_problem(client.delete(f"{base}/{batch_id}"), 409)
    assert "pending" in body["detail"]
    assert fetch(client, base, batch_id)["pending"] == 1


def test_a_deleted_batch_id_is_never_reused(client, base, process):
    first = submit(client, base, [item("m1")])
    process()
    client.delete(f"{base}/{first}")
    second = submit(client, base, [item("m2")])
    assert second != first


# --- retry --------------------------------------------------------------------


def test_retry_puts_failed_items_back_and_judges_them_again(client, base, process, monkeypatch):
    batch_id = submit(client, base, [item("m1"), item("m2", activity_date="2026-12-31")])
    process()
    assert fetch(client, base, batch_id)["status"] == "partial"

    response = client.post(f"{base}/{batch_id}/retry")
    assert response.status_code == 202
    body = response.json()
    assert (body["batch_id"], body["retried_items"], body["status"]) == (batch_id, 1, "processing")
    assert response.headers["location"] == f"{base}/{batch_id}"
    retried = fetch(client, base, batch_id)
    assert retried["items"][1]["status"] == "pending"
    assert retried["items"][1]["attempts"] == 2
    assert retried["completed_at"] is None

    # Judged when processed: by then the date has passed.
    monkeypatch.setattr(worker.tasks, "today_in", lambda _zone: date(2027, 1, 1))
    process()
    done = fetch(client, base, batch_id)
    assert done["status"] == "completed"
    assert done["items"][1]["status"] == "success"


def test_retry_is_refused_when_nothing_failed(client, base, process):
    batch_id = submit(client, base, [item()])
    assert_problem(client.post(f"{base}/{batch_id}/retry"), 409)
    process()
    assert_problem(client.post(f"{base}/{batch_id}/retry"), 409)


def test_retry_is_refused_on_a_cancelled_batch(client, base):
    batch_id = submit(client, base, [item()])
    client.post(f"{base}/{batch_id}/cancel")
    body = assert_problem(client.post(f"{base}/{batch_id}/retry"), 409)
    assert "cancelled" in body["detail"]


def test_retry_answers_404_for_an_unknown_batch(client, base):
    assert_problem(client.post(f"{base}/batch-9999/retry"), 404)


# --- cancel -------------------------------------------------------------------


def test_cancel_cancels_pending_items_only(client, base, process):
    done = submit(client, base, [item("m1")])
    process()
    batch_id = submit(client, base, [item("m2"), item("m3"), item("m4")])
    response = client.post(f"{base}/{batch_id}/cancel")
    assert response.status_code == 200
    body = response.json()
    assert (body["cancelled_items"], body["status"]) == (3, "cancelled")
    assert body["cancelled_at"].endswith("Z")
    assert response.headers["etag"]
    process()
    batch = fetch(client, base, batch_id)
    assert (batch["cancelled"], batch["pending"], batch["completed"]) == (3, 0, 0)
    assert batch["status"] == "cancelled"
    assert_problem(client.post(f"{base}/{done}/cancel"), 409)


def test_cancel_is_refused_when_nothing_is_pending(client, base):
    batch_id = submit(client, base, [item()])
    client.post(f"{base}/{batch_id}/cancel")
    assert_problem(client.post(f"{base}/{batch_id}/cancel"), 409)


def test_cancel_answers_404_for_an_unknown_batch(client, base):
    assert_problem(client.post(f"{base}/batch-9999/cancel"), 404)


# --- the edges of the API -----------------------------------------------------


def test_counters_always_add_up(client, base, process):
    batch_id = submit(
        client, base, [item("m1"), item("m1"), item("m2", activity_date=FUTURE), item("m3")]
    )
    process()
    client.post(f"{base}/{batch_id}/retry")
    for batch in (fetch(client, base, batch_id), client.get(base).json()["data"][0]):
        counted = batch["completed"] + batch["failed"] + batch["pending"] + batch["cancelled"]
        assert counted == batch["total_items"] == 4


def test_both_base_paths_see_the_same_batches(client, process):
    batch_id = submit(client, CANONICAL, [item()])
    process()
    assert fetch(client, DOUBLED, batch_id) == fetch(client, CANONICAL, batch_id)


def test_unknown_routes_answer_404_problem(client):
    assert_problem(client.get("/api/v1/nothing-here"), 404)
    assert_problem(client.get(f"{CANONICAL}/batch-0001/items"), 404)


def test_the_served_spec_names_the_base_path_it_is_served_under(client, base):
    prefix = base.removesuffix("/bulk-registrations")
    spec = client.get(f"{prefix}/openapi.json").json()
    assert spec["servers"] == [{"url": prefix}]
    assert "/bulk-registrations/{batch_id}/retry" in spec["paths"]


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PATCH", "", "GET, POST, HEAD"),
        ("DELETE", "", "GET, POST, HEAD"),
        ("OPTIONS", "", "GET, POST, HEAD"),
        ("POST", "/batch-0001", "GET, PUT, DELETE, HEAD"),
        ("PATCH", "/batch-0001", "GET, PUT, DELETE, HEAD"),
        ("GET", "/batch-0001/retry", "POST"),
        ("DELETE", "/batch-0001/cancel", "POST"),
    ],
)
def test_unsupported_methods_answer_405_listing_every_method_of_the_path(
    client, base, method, path, allowed
):
    response = client.request(method, f"{base}{path}")
    assert_problem(response, 405)
    assert response.headers["allow"] == allowed


def test_a_query_parameter_given_twice_is_400(client, base):
    body = assert_problem(client.get(f"{base}?page=1&page=2"), 400)
    assert "page" in body["detail"]


def test_list_totals_follow_every_change_of_status(client, base, process):
    def totals():
        return {
            status: client.get(base, params={"status": status}).json()["pagination"]["total"]
            for status in ("processing", "completed", "partial", "failed", "cancelled")
        }

    first = submit(client, base, [item("m1"), item("m1")], coordinator="coord-a")
    second = submit(client, base, [item("m2")], coordinator="coord-b")
    third = submit(client, base, [item("m3")], coordinator="coord-a")
    client.post(f"{base}/{third}/cancel")
    assert totals() == {"processing": 2, "completed": 0, "partial": 0, "failed": 0, "cancelled": 1}
    process()
    assert totals() == {"processing": 0, "completed": 1, "partial": 1, "failed": 0, "cancelled": 1}
    client.post(f"{base}/{first}/retry")
    assert totals()["processing"] == 1
    process()
    client.delete(f"{base}/{second}")
    assert totals() == {"processing": 0, "completed": 0, "partial": 1, "failed": 0, "cancelled": 1}
    mine = client.get(base, params={"coordinator_id": "coord-a", "status": "partial"})
    assert mine.json()["pagination"]["total"] == 1
    assert client.get(base).json()["pagination"]["total"] == 2


@pytest.mark.parametrize("method", ["PUT", "DELETE", "POST"])
def test_the_largest_batch_id_the_spec_allows_is_a_plain_404(client, base, method):
    target = f"{base}/batch-{'9' * 18}"
    if method == "POST":
        response = client.post(f"{target}/cancel")
    else:
        response = client.request(method, target, json={"label": "x"} if method == "PUT" else None)
    assert_problem(response, 404)


def test_handlers_run_on_the_web_threads_not_the_event_loop(client, base, monkeypatch):
    import threading

    import services

    seen = []
    list_batches = services.list_batches

    def spy(**kwargs):
        seen.append(threading.current_thread().name)
        return list_batches(**kwargs)

    monkeypatch.setattr(services, "list_batches", spy)
    client.get(base)
    assert seen and seen[0].startswith("handler")


def test_a_405_on_the_served_spec_lists_its_methods(client, base):
    prefix = base.removesuffix("/bulk-registrations")
    response = client.delete(f"{prefix}/openapi.json")
    assert_problem(response, 405)
    assert response.headers["allow"] == "GET, HEAD"


def test_a_trailing_slash_names_the_same_resource(client, base):
    batch_id = submit(client, base, [item()])
    assert client.get(f"{base}/{batch_id}/").json()["batch_id"] == batch_id
    assert client.get(f"{base}/").status_code == 200
    assert_problem(client.post(f"{base}/{batch_id}/retry/"), 409)


@pytest.mark.parametrize("content_type", ["APPLICATION/JSON", "Application/Json; charset=UTF-8"])
def test_media_types_are_case_insensitive(client, base, content_type):
    body = json.dumps({"coordinator_id": "coord-1", "items": [item()]}).encode()
    response = client.post(base, content=body, headers={"content-type": content_type})
    assert response.status_code == 202

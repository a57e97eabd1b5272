"""The worker: chunks, cancellation between chunks, hand-back, reconciliation."""

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import timedelta

import pytest

import worker.tasks
from rules import utc_now
from settings import settings
from storage.database import database, reading, writing
from storage.models import Activity, Batch, BatchItem
from storage.queue import huey

BASE = "/api/v1/bulk-registrations"


def submit(client, count, mentor="mentor"):
    items = [
        {
            "mentor_id": f"{mentor}-{n}",
            "activity_type": "workshop",
            "activity_date": "2026-03-24",
            "duration_minutes": 30,
        }
        for n in range(count)
    ]
    response = client.post(BASE, json={"coordinator_id": "coord-1", "items": items})
    assert response.status_code == 202
    return response.json()["batch_id"]


def run_one_job():
    with writing():
        task = huey.dequeue()
    assert task is not None, "no job was queued"
    huey.execute(task)


@pytest.fixture
def small_chunks(monkeypatch):
    """Two items per chunk, two per job: a five-item batch takes three jobs."""
    monkeypatch.setattr(
        worker.tasks, "settings", replace(settings, chunk_size=2, task_item_budget=2)
    )


def test_a_job_hands_the_rest_of_a_large_batch_back_to_the_queue(client, small_chunks, process):
    batch_id = submit(client, 5)
    run_one_job()
    batch = client.get(f"{BASE}/{batch_id}").json()
    assert (batch["completed"], batch["pending"]) == (2, 3)
    assert huey.pending_count() == 1
    assert process() == 2
    assert client.get(f"{BASE}/{batch_id}").json()["status"] == "completed"


def test_cancellation_is_honoured_between_chunks(client, small_chunks, process):
    batch_id = submit(client, 5)
    run_one_job()
    cancelled = client.post(f"{BASE}/{batch_id}/cancel").json()
    assert cancelled["cancelled_items"] == 3
    process()
    batch = client.get(f"{BASE}/{batch_id}").json()
    assert (batch["completed"], batch["cancelled"], batch["pending"]) == (2, 3, 0)
    assert [i["status"] for i in batch["items"]] == ["success"] * 2 + ["cancelled"] * 3
    with reading():
        assert Activity.select().count() == 2


def test_a_chunk_settles_its_items_and_counters_together(client, process):
    batch_id = submit(client, 3)
    process()
    with reading():
        batch = Batch.get()
        settled = BatchItem.select().where(BatchItem.settled_at.is_null(False)).count()
    assert settled == 3
    assert batch.completed == 3
    assert batch.version == 2  # one chunk, one change
    assert batch.lease_expires_at is None
    assert client.get(f"{BASE}/{batch_id}").json()["completed_at"] is not None


def test_the_reconciler_requeues_a_batch_whose_lease_ran_out(client, process):
    batch_id = submit(client, 3)
    with writing():
        huey.storage.flush_queue()  # the job is lost, as when a consumer dies holding it
    assert worker.tasks.reconcile() == []  # still within its grace period

    with writing():
        Batch.update(lease_expires_at=utc_now() - timedelta(seconds=1)).execute()
    assert worker.tasks.reconcile() == [int(batch_id.removeprefix("batch-"))]
    assert worker.tasks.reconcile() == []  # queued once, with a fresh lease
    assert process() == 1
    assert client.get(f"{BASE}/{batch_id}").json()["status"] == "completed"


def test_the_reconciler_leaves_finished_and_cancelled_batches_alone(client, process):
    submit(client, 1, mentor="done")
    process()
    cancelled = submit(client, 1, mentor="cancelled")
    client.post(f"{BASE}/{cancelled}/cancel")
    with writing():
        Batch.update(lease_expires_at=utc_now() - timedelta(seconds=1)).execute()
    assert worker.tasks.reconcile() == []


@pytest.fixture
def two_item_chunks(monkeypatch):
    """Two items per chunk, and no budget to speak of."""
    monkeypatch.setattr(
        worker.tasks, "settings", replace(settings, chunk_size=2, task_item_budget=1000)
    )


def test_a_job_queues_a_helper_when_its_batch_has_more_than_one_chunk(
    client, two_item_chunks, process
):
    batch_id = submit(client, 5)
    run_one_job()
    assert client.get(f"{BASE}/{batch_id}").json()["status"] == "completed"
    # The helper was queued after the first chunk; by now it finds nothing to do.
    assert huey.pending_count() == 1
    assert process() == 1
    assert huey.pending_count() == 0


def test_a_job_queues_no_helper_for_a_batch_of_one_chunk(client, two_item_chunks):
    submit(client, 2)
    run_one_job()
    assert huey.pending_count() == 0


def test_a_stopping_consumer_hands_the_batch_back_after_the_chunk_in_hand(
    client, two_item_chunks, monkeypatch, process
):
    stopping = threading.Event()
    stopping.set()
    monkeypatch.setattr(worker.tasks, "stopping", stopping)
    batch_id = submit(client, 5)
    run_one_job()
    batch = client.get(f"{BASE}/{batch_id}").json()
    assert (batch["completed"], batch["pending"]) == (2, 3)
    assert huey.pending_count() == 1


def test_a_job_takes_a_short_lease_before_its_first_chunk(client, monkeypatch):
    """A consumer dying mid-chunk leaves a lease that runs out soon, not the grace period."""

    def dies(*args, **kwargs):
        raise ConnectionError("consumer lost mid-chunk")

    monkeypatch.setattr(worker.tasks, "settle_next_chunk", dies)
    submit(client, 3)
    before = utc_now()
    run_one_job()
    with reading():
        lease = Batch.get().lease_expires_at
    assert lease <= utc_now() + timedelta(seconds=settings.lease_seconds)
    assert lease >= before + timedelta(seconds=settings.lease_seconds)
    assert settings.lease_seconds < settings.queue_grace_seconds


def test_an_interrupted_job_queues_its_batch_again_at_once(client, process):
    batch_id = submit(client, 3)
    with writing():
        task = huey.dequeue()
    worker.tasks.queue_interrupted_batch("interrupted", task)
    assert process() == 1
    assert client.get(f"{BASE}/{batch_id}").json()["status"] == "completed"


def test_an_idle_consumer_polls_without_waiting_for_the_write_lock(client):
    """Looking at an empty queue must not queue up behind a writer (SQLite's one lock)."""
    other = database.connection_context()
    with ThreadPoolExecutor(1) as writer_thread:
        holding = threading.Event()
        release = threading.Event()

        def hold_the_write_lock():
            with writing():
                Batch.select().count()
                holding.set()
                release.wait(30)

        held = writer_thread.submit(hold_the_write_lock)
        assert holding.wait(10)
        try:
            with other:
                assert huey.dequeue() is None
        finally:
            release.set()
        held.result()

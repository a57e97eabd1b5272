"""Consumers racing each other and the coordinator's cancel, retry and delete.

Consumers here are threads of the test process taking jobs off the real
queue, so a chunk can be held open at a chosen point while another writer
tries its luck.
"""

import random
import threading
from collections import Counter
from dataclasses import replace
from datetime import date

import pytest

import services
import storage.processing
import worker.tasks
from rules import today_in, utc_now
from settings import settings
from storage.batches import NewItem
from storage.database import database, is_sqlite, reading, writing
from storage.models import Batch, BatchItem
from storage.processing import settle_next_chunk
from storage.queue import huey
from tests.invariants import check_invariants

PAST = date(2026, 3, 24)
FUTURE = date(2099, 1, 1)


def new_items(count, *, mentors=None, future_every=0):
    """`count` workshop items; every `future_every`-th one is dated in the future."""
    return [
        NewItem(
            mentor_id=f"mentor-{n if mentors is None else n % mentors}",
            activity_type="workshop",
            activity_date=FUTURE if future_every and n % future_every == 0 else PAST,
            duration_minutes=30,
            notes=None,
        )
        for n in range(1, count + 1)
    ]


def settle_chunk(number, limit):
    with writing():
        return settle_next_chunk(
            number,
            limit=limit,
            today=today_in(settings.programme_timezone),
            now=utc_now(),
            lease_seconds=settings.lease_seconds,
        )


def batch_items(number):
    with reading():
        query = BatchItem.select().where(BatchItem.batch == number)
        return list(query.order_by(BatchItem.position))


def item_statuses(number):
    return [item.status for item in batch_items(number)]


class HeldChunk:
    """A chunk run on its own thread, held after claiming its items until released."""

    def __init__(self, monkeypatch, number, limit):
        self.claimed = threading.Event()
        self.release = threading.Event()
        create_activities = storage.processing._create_activities
        holder = self

        def held(*args, **kwargs):
            if threading.current_thread() is holder.thread:
                holder.claimed.set()
                assert holder.release.wait(30)
            return create_activities(*args, **kwargs)

        monkeypatch.setattr(storage.processing, "_create_activities", held)
        self.thread = threading.Thread(target=self._run, args=(number, limit))
        self.thread.start()
        assert self.claimed.wait(30), "the chunk never claimed its items"

    def _run(self, number, limit):
        self.outcome = settle_chunk(number, limit)

    def finish(self):
        self.release.set()
        self.thread.join(30)
        return self.outcome


def in_thread(function, *args):
    """Start `function` on a thread; returns a join() that gives its result."""
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("value", function(*args)))
    thread.start()

    def join():
        thread.join(30)
        assert not thread.is_alive()
        return result["value"]

    return join


def wait_for_a_lock_waiter():
    """On PostgreSQL, until some session waits for a lock another one holds."""
    if is_sqlite():
        return
    for _ in range(600):
        with database.connection_context():
            waiting = database.execute_sql(
                "SELECT count(*) FROM pg_locks WHERE NOT granted AND database = "
                "(SELECT oid FROM pg_database WHERE datname = current_database())"
            )
            if waiting.fetchone()[0]:
                return
        threading.Event().wait(0.05)
    raise AssertionError("no session ever waited for a lock")


@pytest.mark.skipif(is_sqlite(), reason="SQLite admits one writer at a time")
def test_two_consumers_settle_different_chunks_of_one_batch_at_once(monkeypatch):
    number = services.submit_batch("coord-1", None, new_items(25)).id
    held = HeldChunk(monkeypatch, number, limit=10)

    other = settle_chunk(number, limit=10)
    assert other.settled == 10
    assert item_statuses(number) == ["pending"] * 10 + ["success"] * 10 + ["pending"] * 5

    assert held.finish().settled == 10
    assert item_statuses(number) == ["success"] * 20 + ["pending"] * 5
    with reading():
        batch = Batch.get_by_id(number)
    assert (batch.completed, batch.pending) == (20, 5)
    check_invariants(all_settled=False)


def test_cancel_waits_for_the_chunk_in_flight_then_cancels_the_rest(monkeypatch):
    number = services.submit_batch("coord-1", None, new_items(25)).id
    held = HeldChunk(monkeypatch, number, limit=10)
    cancel = in_thread(services.cancel_pending_items, number)
    wait_for_a_lock_waiter()

    assert held.finish().settled == 10
    batch, cancelled = cancel()
    assert cancelled == 15
    assert (batch.completed, batch.cancelled, batch.pending) == (10, 15, 0)
    assert item_statuses(number) == ["success"] * 10 + ["cancelled"] * 15
    check_invariants(all_settled=False)


def test_retry_waits_for_the_chunk_in_flight_and_retries_its_failures_too(monkeypatch):
    # Every third item is dated in the future: each of the first two chunks fails three.
    number = services.submit_batch("coord-1", None, new_items(25, future_every=3)).id
    assert settle_chunk(number, limit=10).settled == 10
    held = HeldChunk(monkeypatch, number, limit=10)
    retry = in_thread(services.retry_failed_items, number)
    wait_for_a_lock_waiter()

    held.finish()
    batch, retried = retry()
    assert retried == 3 + 3
    assert (batch.failed, batch.pending, batch.completed) == (0, 5 + 6, 14)
    attempts = [item.attempts for item in batch_items(number)]
    assert attempts[:20] == [2 if position % 3 == 0 else 1 for position in range(1, 21)]
    check_invariants(all_settled=False)


class Consumers:
    """Threads taking jobs off the queue until stopped; errors in jobs are kept."""

    def __init__(self, count):
        self.stop = threading.Event()
        self.errors = []
        huey.signal("error")(self._record_error)
        self.threads = [threading.Thread(target=self._work) for _ in range(count)]
        for thread in self.threads:
            thread.start()

    def _record_error(self, signal, task, exc):
        self.errors.append(repr(exc))

    def _work(self):
        while not self.stop.is_set():
            with writing():
                task = huey.dequeue()
            if task is None:
                self.stop.wait(0.01)
            else:
                huey.execute(task)

    def join(self):
        self.stop.set()
        for thread in self.threads:
            thread.join(60)
        huey.disconnect_signal(self._record_error)


def wait_until_nothing_pending(timeout=60):
    for _ in range(int(timeout / 0.05)):
        with reading():
            if not Batch.select().where(Batch.pending > 0).exists():
                return
        threading.Event().wait(0.05)
    raise AssertionError("batches still pending: nothing queued for them, or a job failed")


@pytest.fixture
def small_chunks(monkeypatch):
    """Ten items per chunk, thirty per job: batches take many jobs and many chunks."""
    monkeypatch.setattr(
        worker.tasks, "settings", replace(settings, chunk_size=10, task_item_budget=30)
    )


def test_consumers_racing_cancel_retry_and_delete_keep_every_batch_consistent(small_chunks):
    rng = random.Random(20260325)
    # Mentors repeat across batches, so batches race for the same activities.
    numbers = [
        services.submit_batch("coord-1", None, new_items(120, mentors=150, future_every=7)).id
        for _ in range(6)
    ]
    consumers = Consumers(4)
    cancelled, retried, deleted = {}, Counter(), set()
    try:
        for _ in range(60):
            number = rng.choice(numbers)
            action = rng.choice(["cancel", "retry", "delete"])
            try:
                if action == "cancel" and number not in cancelled:
                    cancelled[number] = services.cancel_pending_items(number)[1]
                elif action == "retry":
                    retried[number] += services.retry_failed_items(number)[1]
                elif action == "delete":
                    services.delete_batch(number)
                    deleted.add(number)
            except (services.NothingToDo, services.BatchNotFound):
                pass
            threading.Event().wait(rng.uniform(0, 0.02))
        wait_until_nothing_pending()
    finally:
        consumers.join()
    assert consumers.errors == []

    check_invariants(all_settled=True)
    with reading():
        remaining = {batch.id for batch in Batch.select()}
        items = list(BatchItem.select())
    assert remaining == set(numbers) - deleted
    assert not [item for item in items if item.batch_id in deleted]
    for number, count in cancelled.items():
        if number not in deleted:
            assert item_statuses(number).count("cancelled") == count
    for number in remaining:
        extra_attempts = sum(i.attempts - 1 for i in items if i.batch_id == number)
        assert extra_attempts == retried[number]


def test_a_retry_after_the_batch_finished_is_settled_once_more_per_item(small_chunks, process):
    number = services.submit_batch("coord-1", None, new_items(40, future_every=4)).id
    process()
    batch, retried = services.retry_failed_items(number)
    assert retried == 10
    consumers = Consumers(3)
    try:
        wait_until_nothing_pending()
    finally:
        consumers.join()
    with reading():
        batch = Batch.get_by_id(number)
    assert (batch.completed, batch.failed) == (30, 10)
    check_invariants(all_settled=True)

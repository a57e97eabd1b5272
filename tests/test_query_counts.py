"""SQL statements per request, per operation: a guard against N+1 queries.

Each operation's count is pinned, and must not depend on how many items the
batch has. Counted through Peewee's query log, in the web tier only.
"""

import logging

import pytest

from storage.database import is_sqlite

BASE = "/api/v1/bulk-registrations"

# Statements a request makes, beside BEGIN and COMMIT. Change a number only
# with a reason; lowering one is always welcome.
BUDGET = {
    "list": 2,  # the page, the tally
    "get": 2,  # the batch, its items
    "submit": 4,  # the batch, its tally, its items (one INSERT per 200 items), the job
    "put": 2,  # the batch (locked), the new label
    "retry": 6,  # the batch, its failed items, two tally rows, the batch, the job
    "cancel": 5,  # the batch, its pending items, two tally rows, the batch
    "delete": 4,  # the batch, its items, the batch row, its tally
}
# On PostgreSQL a batch writer first takes the batch's advisory lock.
WRITERS = {"put", "retry", "cancel", "delete"}


class QueryCounter(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        # Peewee logs each statement as (sql, params); the pool logs other things.
        if isinstance(record.msg, tuple):
            self.count += 1


@pytest.fixture
def count_queries():
    logger = logging.getLogger("peewee")
    counter = QueryCounter()
    logger.addHandler(counter)
    level = logger.level
    logger.setLevel(logging.DEBUG)

    def counted(call):
        counter.count = 0
        response = call()
        assert response.status_code < 400, response.text
        return counter.count

    yield counted
    logger.removeHandler(counter)
    logger.setLevel(level)


def items(count):
    return [
        {
            "mentor_id": f"mentor-{n}",
            "activity_type": "workshop",
            "activity_date": "2026-03-24" if n % 2 else "2099-01-01",
            "duration_minutes": 30,
        }
        for n in range(count)
    ]


def statements_per_operation(client, process, count_queries, size):
    body = {"coordinator_id": "coord-1", "items": items(size)}
    counts = {"submit": count_queries(lambda: client.post(BASE, json=body))}
    batch_id = client.get(BASE).json()["data"][0]["batch_id"]
    process()
    url = f"{BASE}/{batch_id}"
    counts["list"] = count_queries(lambda: client.get(BASE))
    counts["get"] = count_queries(lambda: client.get(url))
    counts["put"] = count_queries(lambda: client.put(url, json={"label": "x"}))
    counts["retry"] = count_queries(lambda: client.post(f"{url}/retry"))
    counts["cancel"] = count_queries(lambda: client.post(f"{url}/cancel"))
    counts["delete"] = count_queries(lambda: client.delete(url))
    return counts


def test_statements_per_request_stay_within_budget_whatever_the_batch_size(
    client, process, count_queries
):
    # Both sizes fit one 200-row INSERT, so an N+1 anywhere shows as a difference.
    small = statements_per_operation(client, process, count_queries, 4)
    large = statements_per_operation(client, process, count_queries, 200)
    assert small == large, "a statement count grew with the number of items"
    lock = 0 if is_sqlite() else 1
    expected = {name: count + (lock if name in WRITERS else 0) for name, count in BUDGET.items()}
    assert large == expected

"""Hostile and malformed requests against the real server.

Each must get a 4xx problem+json that gives nothing away (no traceback, SQL
or file path), and leave the database exactly as it was.
"""

import json
import os
import re
import socket

import pytest

from storage.database import reading
from storage.models import Activity, Batch, BatchItem, IdempotencyKey
from storage.queue import huey
from tests.live import COLLECTION, LiveService

ITEM = {
    "mentor_id": "mentor-1",
    "activity_type": "workshop",
    "activity_date": "2026-03-24",
    "duration_minutes": 30,
    "notes": "fine",
}
JSON = {"Content-Type": "application/json"}
LONG = "x" * 100_000
LEAKS = re.compile(r"Traceback|SELECT|INSERT|sqlite|psycopg|peewee|\.py\b|/work/|/usr/", re.I)


def submit_body(**overrides) -> bytes:
    item = {**ITEM, **overrides.pop("item", {})}
    return json.dumps({"coordinator_id": "coord-1", "items": [item], **overrides}).encode()


CASES = {
    # What the body is made of
    "malformed json": ("POST", COLLECTION, JSON, b'{"coordinator_id": "c1", "items": [', 400),
    "not utf-8": ("POST", COLLECTION, JSON, submit_body().replace(b"coord-1", b"coord-\xff"), 400),
    "lone surrogate": ("POST", COLLECTION, JSON, submit_body(item={"notes": "\ud800"}), 400),
    "duplicate keys": (
        "POST",
        COLLECTION,
        JSON,
        b'{"coordinator_id":"a","coordinator_id":"b"}',
        400,
    ),
    "nan": ("POST", COLLECTION, JSON, submit_body().replace(b"30", b"NaN"), 400),
    "1e309": ("POST", COLLECTION, JSON, submit_body().replace(b"30", b"1e309"), 400),
    "60.0 for an integer": (
        "POST",
        COLLECTION,
        JSON,
        submit_body(item={"duration_minutes": 60.0}),
        400,
    ),
    "2**70 for an integer": (
        "POST",
        COLLECTION,
        JSON,
        submit_body(item={"duration_minutes": 2**70}),
        400,
    ),
    "a string for an integer": (
        "POST",
        COLLECTION,
        JSON,
        submit_body(item={"duration_minutes": "60"}),
        400,
    ),
    "2026-02-30": (
        "POST",
        COLLECTION,
        JSON,
        submit_body(item={"activity_date": "2026-02-30"}),
        400,
    ),
    "2026-13-01": (
        "POST",
        COLLECTION,
        JSON,
        submit_body(item={"activity_date": "2026-13-01"}),
        400,
    ),
    "deeply nested": ("POST", COLLECTION, JSON, b"[" * 100_000 + b"]" * 100_000, 400),
    "nested past the validator": (
        "POST",
        COLLECTION,
        JSON,
        b'{"a":' * 900 + b"1" + b"}" * 900,
        400,
    ),
    "escaped nul": ("POST", COLLECTION, JSON, submit_body(item={"notes": "a\u0000b"}), 400),
    "raw control character": (
        "POST",
        COLLECTION,
        JSON,
        submit_body().replace(b"fine", b"fi\x07ne"),
        400,
    ),
    "bell in the label": ("POST", COLLECTION, JSON, submit_body(label="ring\u0007"), 400),
    "1001 items": (
        "POST",
        COLLECTION,
        JSON,
        json.dumps({"coordinator_id": "c", "items": [ITEM] * 1001}).encode(),
        400,
    ),
    "top-level array": ("POST", COLLECTION, JSON, b"[]", 400),
    "top-level null": ("POST", COLLECTION, JSON, b"null", 400),
    "empty body": ("POST", COLLECTION, JSON, b"", 400),
    # How the body is labelled and sized
    "text/plain": ("POST", COLLECTION, {"Content-Type": "text/plain"}, submit_body(), 415),
    "no content type": ("POST", COLLECTION, {}, submit_body(), 415),
    "two content types": (
        "POST",
        COLLECTION,
        {"Content-Type": "application/json, text/plain"},
        submit_body(),
        415,
    ),
    # Very long strings in every field
    **{
        f"long {field}": (
            "POST",
            COLLECTION,
            JSON,
            submit_body(
                **(
                    {field: LONG}
                    if field in ("coordinator_id", "label")
                    else {"item": {field: LONG}}
                )
            ),
            400,
        )
        for field in (
            "coordinator_id",
            "label",
            "mentor_id",
            "activity_type",
            "activity_date",
            "notes",
        )
    },
    "long label in a put": (
        "PUT",
        f"{COLLECTION}/batch-0001",
        JSON,
        json.dumps({"label": LONG}).encode(),
        400,
    ),
    "long reason in a put": (
        "PUT",
        f"{COLLECTION}/batch-0001",
        JSON,
        json.dumps({"status": "cancelled", "cancellation_reason": LONG}).encode(),
        400,
    ),
    "another status in a put": (
        "PUT",
        f"{COLLECTION}/batch-0001",
        JSON,
        b'{"status": "completed"}',
        400,
    ),
    # ... and headers
    "long idempotency key": (
        "POST",
        COLLECTION,
        {**JSON, "Idempotency-Key": "k" * 10_000},
        submit_body(),
        400,
    ),
    "long if-match": (
        "PUT",
        f"{COLLECTION}/batch-0001",
        {**JSON, "If-Match": '"' + "1" * 10_000 + '"'},
        b'{"label": "x"}',
        400,
    ),
    "60,000 keys, one repeated": (
        "POST",
        COLLECTION,
        JSON,
        ("{" + ",".join(f'"k{i}":0' for i in range(60_000)) + ',"k0":1}').encode(),
        400,
    ),
    "200,000 empty items": (
        "POST",
        COLLECTION,
        JSON,
        b'{"coordinator_id":"c","items":[' + b",".join([b"{}"] * 200_000) + b"]}",
        400,
    ),
    "latin-1 charset": (
        "POST",
        COLLECTION,
        {"Content-Type": "application/json; charset=iso-8859-1"},
        submit_body(),
        415,
    ),
    "c1 control in the label": ("POST", COLLECTION, JSON, submit_body(label="next\u0085line"), 400),
    "long content type": (
        "POST",
        COLLECTION,
        {"Content-Type": "application/" + "x" * 10_000},
        submit_body(),
        415,
    ),
    # Query strings
    "unknown query parameter": ("GET", f"{COLLECTION}?colour=red", {}, b"", 400),
    "unknown parameter on a batch": ("GET", f"{COLLECTION}/batch-0001?verbose=1", {}, b"", 400),
    "long query value": ("GET", f"{COLLECTION}?coordinator_id={'c' * 60_000}", {}, b"", 400),
    "sql in a query": ("GET", f"{COLLECTION}?coordinator_id=x'%20OR%20'1'='1", {}, b"", 400),
    "non-utf-8 query": ("GET", f"{COLLECTION}?coordinator_id=%ff", {}, b"", 400),
    "page beyond any offset": ("GET", f"{COLLECTION}?page=99999999999999999999999", {}, b"", 400),
    # Odd batch ids
    "dot-dot": ("GET", f"{COLLECTION}/..", {}, b"", 400),
    "encoded dot-dot": ("GET", f"{COLLECTION}/%2e%2e", {}, b"", 400),
    "dot-dot below a batch": ("GET", f"{COLLECTION}/batch-0001/..", {}, b"", 404),
    "300 characters": ("GET", f"{COLLECTION}/batch-{'1' * 293}", {}, b"", 400),
    "sql-looking id": ("GET", f"{COLLECTION}/batch-0001'%20OR%201=1--", {}, b"", 400),
    "encoded nul": ("GET", f"{COLLECTION}/batch-0001%00", {}, b"", 400),
    "non-utf-8 id": ("GET", f"{COLLECTION}/%ff%fe", {}, b"", 400),
    "id too large for the database": ("DELETE", f"{COLLECTION}/batch-9{'9' * 30}", {}, b"", 400),
}


def raw_request(
    port: int, method: str, target: str, headers: dict, body: bytes
) -> tuple[int, dict, bytes]:
    """Exactly these bytes on the wire: no client normalises the path or the headers."""
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if body or method in ("POST", "PUT"):
        lines.append(f"Content-Length: {len(body)}")
    request = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(request)
        response = b""
        while chunk := connection.recv(65536):
            response += chunk
    head, _, payload = response.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    received = dict(line.lower().split(": ", 1) for line in header_lines)
    return int(status_line.split()[1]), received, payload


@pytest.fixture(scope="module")
def port(tmp_path_factory):
    live = LiveService(
        os.environ["DATABASE_URL"],
        tmp_path_factory.mktemp("hostile"),
        BODY_TIMEOUT_SECONDS="1",
        MAX_REQUESTS_IN_FLIGHT="4",
        MAX_QUEUE_WAIT_SECONDS="1",
    )
    url = live.start_web(workers=1)
    yield int(url.rsplit(":", 1)[1])
    live.stop_all()


def database_state() -> tuple:
    with reading():
        return (
            Batch.select().count(),
            BatchItem.select().count(),
            Activity.select().count(),
            IdempotencyKey.select().count(),
            huey.pending_count(),
        )


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_hostile_input_is_refused_cleanly_and_changes_nothing(port, case):
    method, target, headers, body, expected = CASES[case]
    before = database_state()
    status, received, payload = raw_request(port, method, target, headers, body)
    assert status == expected, payload[:300]
    assert received["content-type"] == "application/problem+json"
    problem = json.loads(payload)
    assert problem["status"] == expected
    assert problem["title"]
    assert not LEAKS.search(payload.decode("utf-8", "replace")), payload[:300]
    assert database_state() == before


def test_a_declared_oversize_body_is_refused_before_it_is_sent(port):
    """413 on the Content-Length alone: the server does not wait for 100 MB."""
    request = (
        f"POST {COLLECTION} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        "Content-Length: 100000000\r\nConnection: close\r\n\r\n{"
    ).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(request)
        response = connection.recv(65536)
    assert response.startswith(b"HTTP/1.1 413")
    assert b"application/problem+json" in response


def test_a_body_that_never_arrives_is_408_and_takes_no_slot(port):
    """Clients that stall mid-body are cut off, and never crowd out the others."""
    stalled = []
    for _ in range(10):  # more than MAX_REQUESTS_IN_FLIGHT (4 here)
        connection = socket.create_connection(("127.0.0.1", port), timeout=10)
        connection.sendall(
            f"POST {COLLECTION} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Content-Length: 1000\r\n\r\n{".encode()
        )
        stalled.append(connection)
    try:
        status, _, _ = raw_request(port, "GET", COLLECTION, {}, b"")
        assert status == 200
        answer = stalled[0].recv(65536)
        assert answer.startswith(b"HTTP/1.1 408")
        assert b"application/problem+json" in answer
    finally:
        for connection in stalled:
            connection.close()

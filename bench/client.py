"""The benchmark's HTTP client and the batches it submits.

Sequential requests on one keep-alive connection, each timed from the
first byte sent to the last byte received.
"""

import http.client
import json
import time
from dataclasses import dataclass
from datetime import date, timedelta

COLLECTION = "/api/v1/bulk-registrations"
# The contract's own activity types: every version of the spec has them.
_ACTIVITY_TYPES = ("peer_session", "workshop")


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float
    # time.perf_counter() when the last byte arrived.
    received_at: float

    def json(self) -> dict:
        return json.loads(self.body)


class Client:
    def __init__(self, port: int, timeout: float = 60) -> None:
        self._connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *_exc) -> None:
        self._connection.close()

    def request(self, method: str, path: str, body: bytes | None = None) -> Reply:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if self._connection.sock is None:
            self._connection.connect()
        started = time.perf_counter()
        self._connection.request(method, path, body=body, headers=headers)
        response = self._connection.getresponse()
        content = response.read()
        received = time.perf_counter()
        return Reply(
            status=response.status,
            headers={name.lower(): value for name, value in response.getheaders()},
            body=content,
            seconds=received - started,
            received_at=received,
        )


class UnexpectedReply(RuntimeError):
    pass


def expect(reply: Reply, status: int, what: str) -> Reply:
    if reply.status != status:
        raise UnexpectedReply(
            f"{what}: expected {status}, got {reply.status}: {reply.body[:300]!r}"
        )
    return reply


def submit_body(sequence: int, items: int, *, today: date) -> bytes:
    """A batch whose every item asks for a new activity: no duplicates, no future dates.

    Mentors are unique to the batch's `sequence`, so batch after batch is
    processed as real work, not as a run of duplicates.
    """
    rows = [
        {
            "mentor_id": f"bench-{sequence:05d}-{position:04d}",
            "activity_type": _ACTIVITY_TYPES[position % 2],
            "activity_date": (today - timedelta(days=1 + position % 28)).isoformat(),
            "duration_minutes": 30 + 15 * (position % 6),
            "notes": f"Bench batch {sequence}, row {position}: mentoring session notes",
        }
        for position in range(items)
    ]
    body = {
        "coordinator_id": f"coord-bench-{sequence % 7}",
        "label": f"Bench batch {sequence}",
        "items": rows,
    }
    return json.dumps(body).encode()

"""When things go wrong inside: 503 for transient trouble, a generic 500 otherwise."""

import asyncio

import httpx
import pytest
from peewee import OperationalError
from playhouse.pool import MaxConnectionsExceeded

import services
from handlers.limits import LoadShedding

BASE = "/api/v1/bulk-registrations"


@pytest.mark.parametrize(
    "failure",
    [OperationalError("database is locked"), MaxConnectionsExceeded("pool exhausted")],
    ids=["database-locked", "pool-exhausted"],
)
def test_a_busy_database_is_503_with_retry_after(client, monkeypatch, failure):
    def busy(*args, **kwargs):
        raise failure

    monkeypatch.setattr(services, "list_batches", busy)
    response = client.get(BASE)
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["retry-after"]) >= 1


def test_an_unexpected_failure_is_a_generic_500_with_a_correlation_id(client, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise ZeroDivisionError("SELECT secret FROM /etc/passwd")

    monkeypatch.setattr(services, "list_batches", broken)
    response = client.get(BASE)
    assert response.status_code == 500
    body = response.json()
    assert "correlation_id" in body
    assert "secret" not in response.text
    assert "passwd" not in response.text
    assert "Traceback" not in response.text
    assert body["correlation_id"] in caplog.text  # the detail went to the log instead


def test_load_shedding_answers_503_when_no_slot_frees_in_time():
    release = asyncio.Event()

    async def slow_app(scope, receive, send):
        await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"done"})

    async def scenario():
        app = LoadShedding(slow_app, max_in_flight=1, max_wait=0.05)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            first = asyncio.create_task(client.get("/first"))
            await asyncio.sleep(0.01)
            shed = await client.get("/second")
            release.set()
            return await first, shed

    first, shed = asyncio.run(scenario())
    assert first.status_code == 200
    assert shed.status_code == 503
    assert shed.headers["retry-after"] == "1"
    assert shed.json()["status"] == 503


def test_a_handler_answering_an_undeclared_status_is_refused(client, monkeypatch, caplog):
    import handlers.batches

    def undeclared(body, status, headers=None):
        return body, 203, {"Content-Type": "application/json", **(headers or {})}

    monkeypatch.setattr(handlers.batches, "json_response", undeclared)
    response = client.get(BASE)
    assert response.status_code == 500
    assert "not declared" in caplog.text


def test_a_handler_leaving_out_a_required_header_is_refused(client, monkeypatch, caplog):
    import handlers.batches

    def without_link(body, status, headers=None):
        return body, status, {"Content-Type": "application/json"}

    monkeypatch.setattr(handlers.batches, "json_response", without_link)
    assert client.get(BASE).status_code == 500
    assert "link" in caplog.text.lower()

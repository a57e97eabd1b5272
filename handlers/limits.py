"""Limits that protect the service before a request reaches Connexion.

Both answer with problem+json themselves: they run outside the routing, so
the exception handlers cannot shape their answers.
"""

import asyncio
from http import HTTPStatus

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from handlers.problems import PROBLEM_JSON, RETRY_AFTER_BUSY_SECONDS


async def send_problem(
    scope: Scope, send: Send, status: int, detail: str, headers: dict[str, str]
) -> None:
    body = orjson.dumps(
        {
            "type": "about:blank",
            "title": HTTPStatus(status).phrase,
            "status": status,
            "detail": detail,
            "instance": scope["path"],
        }
    )
    raw_headers = [
        (b"content-type", PROBLEM_JSON.encode()),
        (b"content-length", str(len(body)).encode()),
        *((name.lower().encode(), value.encode()) for name, value in headers.items()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})


class BodySizeLimit:
    """413 for a body over `max_bytes`, before it is read whole.

    A declared Content-Length is checked before anything is read. A body sent
    without one (chunked) is read here, counted as it arrives and refused as
    soon as it goes over; under the limit it is handed on with its length
    declared, as Connexion's validation needs.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length")
        if declared is not None:
            if declared.isdigit() and int(declared) > self.max_bytes:
                await self._refuse(scope, send)
                return
            await self.app(scope, receive, send)
            return
        if b"transfer-encoding" not in headers:
            await self.app(scope, receive, send)
            return

        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            body += message.get("body", b"")
            if len(body) > self.max_bytes:
                await self._refuse(scope, send)
                return
            more = message.get("more_body", False)

        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        sized = [(name, value) for name, value in scope["headers"] if name != b"transfer-encoding"]
        sized.append((b"content-length", str(len(body)).encode()))
        await self.app({**scope, "headers": sized}, replay, send)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        detail = f"The request body is larger than {self.max_bytes} bytes."
        await send_problem(scope, send, 413, detail, {"Connection": "close"})


class LoadShedding:
    """At most `max_in_flight` requests are worked on at once in this process.

    A request that cannot start within `max_wait` seconds is answered 503 with
    Retry-After at once, instead of queueing until the client times out.
    """

    def __init__(self, app: ASGIApp, max_in_flight: int, max_wait: float) -> None:
        self.app = app
        self.slots = asyncio.Semaphore(max_in_flight)
        self.max_wait = max_wait

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            if self.slots.locked():
                await asyncio.wait_for(self.slots.acquire(), self.max_wait)
            else:
                await self.slots.acquire()  # a free slot: no timer needed
        except TimeoutError:
            detail = "The service is overloaded; nothing was changed. Try again shortly."
            await send_problem(
                scope, send, 503, detail, {"Retry-After": str(RETRY_AFTER_BUSY_SECONDS)}
            )
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self.slots.release()

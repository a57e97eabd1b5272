"""Limits that protect the service before a request reaches Connexion.

Both answer with problem+json themselves: they run outside the routing, so
the exception handlers cannot shape their answers.
"""

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from handlers.problems import PROBLEM_JSON, RETRY_AFTER_BUSY_SECONDS, problem_body


async def send_problem(
    scope: Scope, send: Send, status: int, detail: str, headers: dict[str, str]
) -> None:
    body = problem_body(status, detail, scope["path"])
    raw_headers = [
        (b"content-type", PROBLEM_JSON.encode()),
        (b"content-length", str(len(body)).encode()),
        *((name.lower().encode(), value.encode()) for name, value in headers.items()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})


class RequestBody:
    """Reads a POST or PUT body whole, within limits, before anything else sees it.

    - over `max_bytes`: 413, judged on a declared Content-Length before
      anything is read, or as a body without one arrives;
    - not all there within `timeout` seconds: 408, so a client sending slowly
      (or not at all) cannot hold a request slot;
    - the media type of Content-Type is lower-cased (it is case-insensitive);
    - the body is handed on in one piece with its length declared, as
      Connexion's validation needs.

    Other methods' bodies have no meaning here and are left alone.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, timeout: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large(scope, send)
            return
        try:
            body = await asyncio.wait_for(self._read(receive), self.timeout)
        except _BodyTooLarge:
            await self._too_large(scope, send)
            return
        except _ClientGone:
            return
        except TimeoutError:
            detail = f"The request body did not arrive within {self.timeout:g} seconds."
            await send_problem(scope, send, 408, detail, {"Connection": "close"})
            return

        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        sized = [
            (name, _lower_media_type(value) if name == b"content-type" else value)
            for name, value in scope["headers"]
            if name not in (b"content-length", b"transfer-encoding")
        ]
        sized.append((b"content-length", str(len(body)).encode()))
        await self.app({**scope, "headers": sized}, replay, send)

    async def _read(self, receive: Receive) -> bytes:
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                raise _ClientGone
            body += message.get("body", b"")
            if len(body) > self.max_bytes:
                raise _BodyTooLarge
            more = message.get("more_body", False)
        return bytes(body)

    async def _too_large(self, scope: Scope, send: Send) -> None:
        detail = f"The request body is larger than {self.max_bytes} bytes."
        await send_problem(scope, send, 413, detail, {"Connection": "close"})


class _BodyTooLarge(Exception):
    pass


class _ClientGone(Exception):
    pass


def _lower_media_type(value: bytes) -> bytes:
    media_type, separator, parameters = value.partition(b";")
    return media_type.strip().lower() + separator + parameters


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

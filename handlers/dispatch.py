"""Connexion's handler dispatch, with the per-request rebuilding taken out.

Connexion 3.3's `AsyncOperation` builds a new decorator stack around the
handler on every request (signature inspection, wrappers, a URI parser).
This does the same work once per operation and reuses it: the request
parsing, parameter passing and response building are Connexion's own.

Handlers are plain functions and run on a thread pool of this process
(`WEB_THREADS`), never on the event loop. The pool is asyncio's own executor
rather than AnyIO's: its hand-over makes a fraction of the system calls, which
on a small request is most of the hop's cost.
"""

import asyncio
import contextvars
import functools
import typing as t

from connexion import AsyncApp
from connexion.apps.abstract import AbstractApp
from connexion.apps.asynchronous import AsyncApi, AsyncASGIApp, AsyncOperation
from connexion.decorators import StarletteDecorator
from connexion.lifecycle import ConnexionRequest
from connexion.operations import AbstractOperation
from starlette.types import Receive, Scope, Send

from handlers.threads import handler_threads


class _ThreadedDecorator(StarletteDecorator):
    """Connexion's decorator, running plain handlers on `handler_threads`."""

    @property
    def _sync_async_decorator(self) -> t.Callable[[t.Callable], t.Callable]:
        def decorator(function: t.Callable) -> t.Callable:
            @functools.wraps(function)
            async def wrapper(*args: t.Any, **kwargs: t.Any) -> t.Any:
                # The handler sees this request's context (connexion.request).
                call = functools.partial(contextvars.copy_context().run, function, *args, **kwargs)
                return await asyncio.get_running_loop().run_in_executor(handler_threads, call)

            return wrapper

        return decorator


class PreparedOperation(AsyncOperation):
    def __init__(self, operation: AbstractOperation, **kwargs: t.Any) -> None:
        super().__init__(operation.function, operation_id=operation.operation_id, **kwargs)
        decorator = _ThreadedDecorator(
            pythonic_params=self.pythonic_params, jsonifier=self.jsonifier
        )
        self._prepared = decorator.decorate(self._fn)
        self._uri_parser = operation.uri_parser_class(
            operation.parameters, operation.body_definition()
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = ConnexionRequest(scope, receive, uri_parser=self._uri_parser)
        response = await self._prepared(request)
        await response(scope, receive, send)


class PreparedApi(AsyncApi):
    def make_operation(self, operation: AbstractOperation) -> PreparedOperation:
        return PreparedOperation(
            operation, pythonic_params=self.pythonic_params, jsonifier=self.jsonifier
        )


class PreparedASGIApp(AsyncASGIApp):
    api_cls = PreparedApi


class PreparedAsyncApp(AsyncApp):
    """`connexion.AsyncApp` whose operations are prepared once, not per request."""

    def __init__(self, import_name: str, **kwargs: t.Any) -> None:
        # AsyncApp.__init__ only picks its inner ASGI app; pick ours instead.
        self._middleware_app = PreparedASGIApp()
        AbstractApp.__init__(self, import_name, **kwargs)

"""The ASGI application: openapi.yaml routed onto handlers/ by Connexion.

    gunicorn app:app -k uvicorn_worker.UvicornWorker

The spec is mounted twice: under the canonical base path and under the
doubled prefix the original contract printed. Every request and every
response is validated against it.
"""

import orjson
from connexion.jsonifier import Jsonifier
from connexion.middleware import MiddlewarePosition
from connexion.options import SwaggerUIOptions
from connexion.resolver import Resolver

import handlers
from handlers import idempotency
from handlers.dispatch import PreparedAsyncApp
from handlers.limits import LoadShedding, RequestBody
from handlers.middleware import middleware_stack
from handlers.problems import ERROR_HANDLERS
from handlers.routes import (
    CANONICAL_BASE_PATH,
    DOUBLED_BASE_PATH,
    SPEC_PATH,
    WithoutTrailingSlash,
)
from handlers.validation import validator_map
from settings import settings


class OrjsonJsonifier(Jsonifier):
    def dumps(self, data, **kwargs) -> bytes:
        return orjson.dumps(data)

    def loads(self, data):
        return orjson.loads(data)


def create_app() -> PreparedAsyncApp:
    app = PreparedAsyncApp(
        __name__,
        specification_dir=SPEC_PATH.parent,
        jsonifier=OrjsonJsonifier(),
        resolver=Resolver(handlers.resolve),
        strict_validation=True,
        validate_responses=True,
        validator_map=validator_map(),
        middlewares=middleware_stack(),
        # Serve openapi.json under each base path; no bundled UI.
        swagger_ui_options=SwaggerUIOptions(swagger_ui=False),
    )
    # The doubled prefix first: the canonical mount would swallow it otherwise.
    app.add_api(SPEC_PATH.name, base_path=DOUBLED_BASE_PATH, name="doubled")
    app.add_api(SPEC_PATH.name, base_path=CANONICAL_BASE_PATH, name="canonical")
    # These run before anything else, in this order, so a refused request
    # costs next to nothing. The body is read first: only requests that have
    # arrived whole take one of the slots of load shedding.
    outermost = MiddlewarePosition.BEFORE_EXCEPTION
    app.add_middleware(
        RequestBody,
        position=outermost,
        max_bytes=settings.max_body_bytes,
        timeout=settings.body_timeout_seconds,
    )
    app.add_middleware(WithoutTrailingSlash, position=outermost)
    app.add_middleware(
        LoadShedding,
        position=outermost,
        max_in_flight=settings.max_requests_in_flight,
        max_wait=settings.max_queue_wait_seconds,
    )
    for exception, handler in [*ERROR_HANDLERS, *idempotency.ERROR_HANDLERS]:
        app.add_error_handler(exception, handler)
    return app


app = create_app()

"""Responses: JSON bodies, and RFC 9457 problem details for every error.

Every error the service answers goes through `problem()`: one shape, a
`detail` a client can act on, and never a traceback, SQL or a file path.
"""

import logging
import uuid
from http import HTTPStatus

import orjson
from connexion.exceptions import ProblemException
from connexion.lifecycle import ConnexionRequest, ConnexionResponse
from peewee import OperationalError
from playhouse.pool import MaxConnectionsExceeded
from starlette.exceptions import HTTPException

from handlers.routes import allowed_methods
from services import BatchNotFound, NothingToDo, PreconditionFailed
from storage.database import is_transient_failure

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
# Validation messages quote the offending value; a client needs where and
# why, not a 10 kB echo of its own input.
_MAX_DETAIL = 300
RETRY_AFTER_BUSY_SECONDS = 1


def json_response(body: dict, status: int, headers: dict[str, str] | None = None) -> tuple:
    return body, status, {"Content-Type": "application/json", **(headers or {})}


def problem_body(status: int, detail: str | None, instance: str, **extensions: str) -> bytes:
    """The RFC 9457 document for a status: one shape for every error the service answers."""
    body = {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status}
    if detail:
        body["detail"] = detail if len(detail) <= _MAX_DETAIL else detail[: _MAX_DETAIL - 1] + "…"
    body["instance"] = instance
    body.update(extensions)
    return orjson.dumps(body)


def problem(
    request: ConnexionRequest,
    status: int,
    detail: str | None = None,
    *,
    headers: dict[str, str] | None = None,
    **extensions: str,
) -> ConnexionResponse:
    return ConnexionResponse(
        status_code=status,
        content_type=PROBLEM_JSON,
        body=problem_body(status, detail, request.url.path, **extensions),
        headers=headers,
    )


def batch_not_found(request: ConnexionRequest, exc: BatchNotFound) -> ConnexionResponse:
    return problem(request, 404, f"No batch {exc.args[0]}.")


def nothing_to_do(request: ConnexionRequest, exc: NothingToDo) -> ConnexionResponse:
    return problem(request, 409, str(exc))


def precondition_failed(request: ConnexionRequest, exc: PreconditionFailed) -> ConnexionResponse:
    current = exc.args[0]
    if f"W/{current}" in request.headers.get("If-Match", ""):
        detail = (
            f"If-Match compares strongly, and a weak tag never matches: send {current}, "
            "the batch's current ETag, without W/."
        )
    else:
        detail = (
            f"If-Match does not match the batch's current ETag {current}: "
            "it changed since you read it. Read it again and decide anew."
        )
    return problem(request, 412, detail, headers={"ETag": current})


# The business refusals of the operations, each with its problem response.
REFUSALS = {
    BatchNotFound: batch_not_found,
    NothingToDo: nothing_to_do,
    PreconditionFailed: precondition_failed,
}


def http_error(request: ConnexionRequest, exc: HTTPException) -> ConnexionResponse:
    """Errors raised by Connexion's validation and by routing (400, 404, 405, 415...)."""
    if isinstance(exc, ProblemException):
        status, detail = exc.status, exc.detail
    else:
        status, detail = exc.status_code, exc.detail
    if status >= 500:
        return server_error(request, exc)
    if detail == HTTPStatus(status).phrase:
        detail = None
    if status == 404 and detail is None:
        detail = "This API has no such resource; its routes are in openapi.json."
    headers = dict(exc.headers or {})
    if status == 405:
        # Starlette lists only the methods of the first route it matched.
        allowed = ", ".join(allowed_methods(request.url.path))
        headers["Allow"] = allowed
        detail = f"{request.method} is not allowed here; allowed: {allowed}."
    return problem(request, status, detail, headers=headers)


def undecodable_body(request: ConnexionRequest, exc: UnicodeDecodeError) -> ConnexionResponse:
    return problem(request, 400, "The request body is not valid UTF-8.")


def unavailable(request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    if not is_transient_failure(exc):
        return server_error(request, exc)
    log.warning("answering 503 on %s %s: %s", request.method, request.url.path, exc)
    return problem(
        request,
        503,
        "The service is busy right now; nothing was changed. Try again shortly.",
        headers={"Retry-After": str(RETRY_AFTER_BUSY_SECONDS)},
    )


def server_error(request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    correlation_id = uuid.uuid4().hex
    log.error(
        "unhandled error [%s] on %s %s",
        correlation_id,
        request.method,
        request.url.path,
        exc_info=exc,
    )
    return problem(
        request,
        500,
        "The service failed to handle this request. It has been logged; "
        "quote the correlation_id when reporting it.",
        correlation_id=correlation_id,
    )


ERROR_HANDLERS = [
    *REFUSALS.items(),
    (UnicodeDecodeError, undecodable_body),
    (HTTPException, http_error),
    (ProblemException, http_error),
    (OperationalError, unavailable),
    (MaxConnectionsExceeded, unavailable),
    (Exception, server_error),
]

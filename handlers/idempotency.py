"""Idempotency-Key on submit and retry (IETF httpapi idempotency-key draft).

The same key with the same request within the key's lifetime gets the first
response again, with `Idempotent-Replayed: true`, and changes nothing; the
same key with a different request is 422; the same key while the first
request is still running is 409. Responses of requests that reached the
handler are kept, refusals of the operation (404, 409) included; schema
refusals never get here, and a failed If-Match (412) frees the key again.
"""

import hashlib
from collections.abc import Callable

import orjson
from connexion import request
from connexion.lifecycle import ConnexionRequest, ConnexionResponse

from handlers.problems import REFUSALS, problem
from handlers.routes import rebased
from rules import utc_now
from services import BatchNotFound, NothingToDo
from settings import settings
from storage import idempotency
from storage.database import writing
from storage.idempotency import Claim, KeyRef, StoredResponse

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"


# Refusals kept under the key like any other answer. A failed If-Match is not
# one of them: it says the client's copy is stale, not what the operation did,
# and the client is expected to read the batch again and repeat the request.
KEPT_REFUSALS = (BatchNotFound, NothingToDo)


class KeyInFlight(Exception):
    pass


class KeyReused(Exception):
    pass


def fingerprint(value: object) -> str:
    return hashlib.sha256(orjson.dumps(value, option=orjson.OPT_SORT_KEYS)).hexdigest()


def idempotent(operation: str, scope: str, request_fingerprint: str, perform: Callable[[], tuple]):
    """Run `perform` once per Idempotency-Key; without a key, just run it."""
    key = request.headers.get(HEADER)
    if key is None:
        return perform()
    ref = KeyRef(operation, scope, key)
    now = utc_now()
    with writing():
        claimed = idempotency.claim(
            ref,
            request_fingerprint,
            now=now,
            lock_seconds=settings.idempotency_lock_seconds,
            ttl_seconds=settings.idempotency_ttl_seconds,
        )
    if claimed is Claim.MISMATCH:
        raise KeyReused
    if claimed is Claim.IN_FLIGHT:
        raise KeyInFlight
    if isinstance(claimed, StoredResponse):
        headers = {**claimed.headers, REPLAYED: "true"}
        if "Location" in headers:  # under the base path this request used
            headers["Location"] = rebased(headers["Location"], request.url.path)
        return orjson.loads(claimed.body), claimed.status, headers

    try:
        # One transaction: the operation and the response recorded for the key.
        with writing():
            body, status, headers = perform()
            idempotency.record(ref, StoredResponse(status, headers, orjson.dumps(body)))
        return body, status, headers
    except KEPT_REFUSALS as refusal:
        refused = REFUSALS[type(refusal)](request, refusal)
        with writing():
            idempotency.record(
                ref, StoredResponse(refused.status_code, refused.headers, refused.body)
            )
        return refused
    except BaseException:
        with writing():
            idempotency.release(ref)
        raise


def key_in_flight(req: ConnexionRequest, exc: KeyInFlight) -> ConnexionResponse:
    return problem(
        req,
        409,
        f"A request with this {HEADER} is still being processed; "
        "repeat it once that one has finished to get its response.",
    )


def key_reused(req: ConnexionRequest, exc: KeyReused) -> ConnexionResponse:
    return problem(
        req,
        422,
        f"This {HEADER} was already used for a different request; use a new key.",
    )


ERROR_HANDLERS = [(KeyInFlight, key_in_flight), (KeyReused, key_reused)]

"""Check every response a test receives against openapi.yaml, independently of Connexion.

Connexion validates the responses of its operations itself; this checks
them again from the outside with openapi-core, together with what Connexion
does not cover: status codes the operation does not declare, declared
response headers, and the problem+json answers of unknown routes.
"""

import json
from pathlib import Path
from urllib.parse import parse_qsl

import httpx
from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from openapi_core.templating.paths.exceptions import PathNotFound
from werkzeug.datastructures import Headers, ImmutableMultiDict

SPEC_PATH = Path(__file__).parent.parent / "openapi.yaml"
PROBLEM_JSON = "application/problem+json"

_openapi = OpenAPI.from_file_path(
    str(SPEC_PATH),
    config=Config(extra_media_type_deserializers={PROBLEM_JSON: json.loads}),
)


class _Request:
    def __init__(self, request: httpx.Request) -> None:
        self.host_url = f"{request.url.scheme}://{request.url.netloc.decode()}"
        # A trailing slash names the same resource (openapi.yaml's description).
        self.path = request.url.path.rstrip("/") or "/"
        self.method = request.method.lower()
        try:
            self.body = request.content or None
        except httpx.RequestNotRead:  # a streamed body: nothing to check it against
            self.body = None
        self.content_type = request.headers.get("content-type", "")
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(parse_qsl(request.url.query.decode(), keep_blank_values=True)),
            header=Headers(request.headers.multi_items()),
        )


class _Response:
    def __init__(self, response: httpx.Response) -> None:
        self.status_code = response.status_code
        self.headers = Headers(response.headers.multi_items())
        self.content_type = response.headers.get("content-type", "")
        self.data = response.content


class ContractViolation(AssertionError):
    pass


checked = {"responses": 0}


def check_response(response: httpx.Response) -> None:
    """Raise ContractViolation unless the response is what openapi.yaml promises."""
    response.read()
    checked["responses"] += 1
    content_type = response.headers.get("content-type", "")
    if response.status_code >= 400 and not content_type.startswith(PROBLEM_JSON):
        raise ContractViolation(f"{response.status_code} answered as {content_type!r}")
    try:
        _openapi.validate_response(_Request(response.request), _Response(response))
    except PathNotFound:
        # Not an operation: the served spec itself, or a problem+json 404.
        served_spec = response.request.url.path.endswith("/openapi.json")
        if served_spec and response.status_code in (200, 405):
            return
        if response.status_code != 404:
            raise ContractViolation(
                f"{response.request.url.path} is no route but answered {response.status_code}"
            ) from None
    except Exception as error:
        if _undeclared_method(error) and response.status_code == 405:
            return
        raise ContractViolation(
            f"{response.request.method} {response.request.url.path} -> {response.status_code}: "
            f"{error!r} {getattr(error, '__cause__', '')!r}\n{response.text[:500]}"
        ) from error


def _undeclared_method(error: Exception) -> bool:
    return type(error).__name__ == "OperationNotFound"

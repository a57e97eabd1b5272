"""Where the API lives: the spec, its base paths, and the methods of each path."""

import functools
import re
from pathlib import Path

import yaml

SPEC_PATH = Path(__file__).parent.parent / "openapi.yaml"
CANONICAL_BASE_PATH = "/api/v1"
# The original contract printed every path with the base path twice.
DOUBLED_BASE_PATH = "/api/v1/bulk-registrations/api/v1"
BASE_PATHS = (CANONICAL_BASE_PATH, DOUBLED_BASE_PATH)

COLLECTION = "/bulk-registrations"
_HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


@functools.cache
def _routes() -> list[tuple[re.Pattern, tuple[str, ...]]]:
    spec = yaml.safe_load(SPEC_PATH.read_text())
    # Connexion serves the spec itself under each base path.
    routes = [
        (re.compile(re.escape(f"{base}/openapi.json")), ("GET", "HEAD")) for base in BASE_PATHS
    ]
    for template, item in spec["paths"].items():
        methods = [method.upper() for method in _HTTP_METHODS if method in item]
        if "GET" in methods:
            methods.append("HEAD")  # answered for every GET route
        pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
        for base in BASE_PATHS:
            routes.append((re.compile(re.escape(base) + pattern + "/?"), tuple(methods)))
    return routes


def allowed_methods(path: str) -> tuple[str, ...]:
    """Every method openapi.yaml defines for the path (empty if it is no route)."""
    for pattern, methods in _routes():
        if pattern.fullmatch(path):
            return methods
    return ()


def collection_path(request_path: str) -> str:
    """The collection's path under the base path a request came in on."""
    return request_path[: request_path.rindex(COLLECTION)] + COLLECTION


def rebased(location: str, request_path: str) -> str:
    """`location` (a path in the collection) under the base path of `request_path`."""
    return collection_path(request_path) + location[location.rindex(COLLECTION) + len(COLLECTION) :]


class WithoutTrailingSlash:
    """ASGI middleware: `/bulk-registrations/batch-0042/` is `/bulk-registrations/batch-0042`.

    Starlette would answer such a path with a redirect built from the Host
    header, which the spec does not declare and many clients do not follow
    for POST; the same resource answers directly instead.
    """

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and len(scope["path"]) > 1 and scope["path"].endswith("/"):
            scope = {
                **scope,
                "path": scope["path"].rstrip("/") or "/",
                "raw_path": scope.get("raw_path", b"").rstrip(b"/") or b"/",
            }
        await self.app(scope, receive, send)

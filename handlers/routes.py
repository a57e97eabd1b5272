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

_HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


@functools.cache
def _routes() -> list[tuple[re.Pattern, tuple[str, ...]]]:
    spec = yaml.safe_load(SPEC_PATH.read_text())
    routes = []
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

"""The reference: a bare Starlette app answering the service's own bytes from memory.

    BENCH_CAPTURED=captured.json gunicorn bench.reference_app:app

Each captured response (status, headers, body) is served for the same path
and query, with no validation and no database: what the service could at
best do on the same gunicorn and uvicorn worker.
"""

import base64
import json
import os

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

# Headers the server writes itself.
_SERVER_HEADERS = {"content-length", "date", "server", "connection", "transfer-encoding"}


def load_captured(path: str) -> dict[str, tuple[bytes, int, dict[str, str]]]:
    """(body, status, headers) by request target ("/path?query")."""
    with open(path) as captured:
        entries = json.load(captured)
    return {
        target: (
            base64.b64decode(entry["body"]),
            entry["status"],
            {
                name: value
                for name, value in entry["headers"].items()
                if name not in _SERVER_HEADERS
            },
        )
        for target, entry in entries.items()
    }


_captured = load_captured(os.environ["BENCH_CAPTURED"])


async def captured_response(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if target not in _captured:
        return Response(status_code=404)
    body, status, headers = _captured[target]
    return Response(body, status_code=status, headers=headers)


app = Starlette(routes=[Route("/{path:path}", captured_response)])

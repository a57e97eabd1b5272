"""`make lint-spec`: openapi.yaml is a valid OpenAPI 3.0 document, and the
operations and the handlers match one to one.

Every operationId must resolve to a handler function, and every public
function of the handler modules must be some operation's handler: no route
without code, no code without a route.
"""

import inspect
import sys
from pathlib import Path

import yaml
from openapi_spec_validator import validate
from openapi_spec_validator.readers import read_from_filename

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import handlers  # noqa: E402
from handlers import batches  # noqa: E402
from handlers.routes import SPEC_PATH  # noqa: E402

HANDLER_MODULES = [batches]
METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def operation_ids(spec: dict) -> list[str]:
    return [
        operation["operationId"]
        for item in spec["paths"].values()
        for method, operation in item.items()
        if method in METHODS
    ]


def problems_with(spec: dict) -> list[str]:
    problems = []
    resolved = set()
    for operation_id in operation_ids(spec):
        try:
            resolved.add(handlers.resolve(operation_id))
        except AttributeError:
            problems.append(f"operationId {operation_id!r} has no handler")
    for module in HANDLER_MODULES:
        for name, function in inspect.getmembers(module, inspect.isfunction):
            public = function.__module__ == module.__name__ and not name.startswith("_")
            if public and function not in resolved:
                problems.append(f"{module.__name__}.{name} handles no operation of the spec")
    return problems


def main() -> int:
    document, base_uri = read_from_filename(str(SPEC_PATH))
    validate(document, base_uri=base_uri)
    spec = yaml.safe_load(SPEC_PATH.read_text())
    problems = problems_with(spec)
    for problem in problems:
        print(f"lint-spec: {problem}", file=sys.stderr)
    if problems:
        return 1
    count = len(operation_ids(spec))
    print(
        f"lint-spec: {SPEC_PATH.name} is valid OpenAPI; {count} operations, each with its handler"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""make lint-spec: operations and handlers match one to one."""

import copy

import yaml

from conformance.lint_spec import problems_with
from handlers.routes import SPEC_PATH

SPEC = yaml.safe_load(SPEC_PATH.read_text())


def test_the_spec_and_the_handlers_match():
    assert problems_with(SPEC) == []


def test_an_operation_without_a_handler_is_reported():
    spec = copy.deepcopy(SPEC)
    spec["paths"]["/bulk-registrations"]["get"]["operationId"] = "listEverything"
    assert problems_with(spec) == [
        "operationId 'listEverything' has no handler",
        "handlers.batches.list_batches handles no operation of the spec",
    ]


def test_a_handler_without_an_operation_is_reported():
    spec = copy.deepcopy(SPEC)
    del spec["paths"]["/bulk-registrations/{batch_id}/cancel"]
    assert problems_with(spec) == [
        "handlers.batches.cancel_pending_items handles no operation of the spec"
    ]

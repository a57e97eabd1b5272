"""Schemathesis against the ASGI app, in process: contract breaks caught in seconds.

The same configuration as `make conformance` (every check, stateful testing
over the spec's links), with fewer examples; the live run fuzzes harder.
"""

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig
from schemathesis.core.failures import FailureGroup

from app import app
from handlers import representations
from handlers.routes import SPEC_PATH

CONFIG = SchemathesisConfig.from_path(SPEC_PATH.parent / "conformance" / "schemathesis.toml")
schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", app, config=CONFIG)
FAST = settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@schema.parametrize()
@FAST
def test_every_operation_conforms_to_the_spec(case):
    case.call_and_validate()


Workflow = schema.as_state_machine()
Workflow.TestCase.settings = settings(
    max_examples=10,
    stateful_step_count=6,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
TestStatefulWorkflows = Workflow.TestCase


def test_a_response_with_an_undeclared_field_fails_conformance(client, monkeypatch):
    """The suite has teeth: a handler that drifts from the spec is caught."""
    client.post(
        "/api/v1/bulk-registrations",
        json={
            "coordinator_id": "coord-1",
            "items": [
                {
                    "mentor_id": "m1",
                    "activity_type": "workshop",
                    "activity_date": "2026-03-24",
                    "duration_minutes": 30,
                }
            ],
        },
    )
    summary = representations.batch_summary
    monkeypatch.setattr(
        representations, "batch_summary", lambda batch: {**summary(batch), "owner": "someone"}
    )
    case = schema["/bulk-registrations"]["GET"].Case(query={"page": 1})
    with pytest.raises(FailureGroup) as failure:
        case.call_and_validate()
    # Connexion's response validation refuses to send it: Schemathesis sees a 5xx.
    assert "Server error" in str(failure.value)

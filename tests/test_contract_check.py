"""The response checker itself: it must reject what the spec does not allow."""

import httpx
import pytest

from tests.contract import ContractViolation, check_response

BASE = "http://testserver/api/v1/bulk-registrations"


def respond(method, url, status, body, content_type="application/json", headers=None):
    request = httpx.Request(method, url)
    return httpx.Response(
        status,
        content=body,
        headers={"content-type": content_type, **(headers or {})},
        request=request,
    )


def test_an_undeclared_field_is_a_violation():
    body = b'{"success": true, "deleted_batch_id": "batch-0001", "extra": 1}'
    with pytest.raises(ContractViolation):
        check_response(respond("DELETE", f"{BASE}/batch-0001", 200, body))


def test_an_undeclared_status_is_a_violation():
    body = b'{"type": "about:blank", "title": "Gone", "status": 410}'
    with pytest.raises(ContractViolation):
        check_response(respond("GET", f"{BASE}/batch-0001", 410, body, "application/problem+json"))


def test_a_missing_required_header_is_a_violation():
    body = b'{"data": [], "pagination": {"page": 1, "limit": 20, "total": 0}}'
    with pytest.raises(ContractViolation):
        check_response(respond("GET", BASE, 200, body))


def test_an_error_that_is_not_problem_json_is_a_violation():
    with pytest.raises(ContractViolation):
        check_response(respond("GET", f"{BASE}/batch-0001", 404, b'{"error": "nope"}'))


def test_a_conforming_response_passes():
    body = b'{"success": true, "deleted_batch_id": "batch-0001"}'
    check_response(respond("DELETE", f"{BASE}/batch-0001", 200, body))

"""Every API error leaves as application/problem+json with a stable code."""
import pytest
from rest_framework.test import APIClient

pytestmark = [pytest.mark.urls("tests.commerce.error_views")]

PROBLEM = "application/problem+json"


@pytest.fixture
def client_no_raise() -> APIClient:
    # Let Django's 500 handler respond instead of re-raising into the test.
    return APIClient(raise_request_exception=False)


def assert_problem(response, status: int, code: str) -> dict:
    assert response.status_code == status
    assert response["Content-Type"] == PROBLEM
    body = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"] == f"urn:commerce:problem:{code}"
    assert body["title"]
    assert body["detail"]
    return body


def test_problem_400_names_field(api_client):
    response = api_client.post("/api/test/echo/", {"quantity": 0}, format="json")

    body = assert_problem(response, 400, "validation_error")
    assert body["field"] == "quantity"
    assert body["errors"][0]["field"] == "quantity"
    assert body["hint"]


def test_problem_400_malformed_json(api_client):
    response = api_client.generic("POST", "/api/test/echo/", "{not json", content_type="application/json")

    assert_problem(response, 400, "malformed_request")


def test_problem_404_django_url(api_client):
    response = api_client.get("/api/nowhere/")

    assert_problem(response, 404, "not_found")


def test_problem_405_sends_allow(api_client):
    response = api_client.get("/api/test/echo/")

    assert_problem(response, 405, "method_not_allowed")
    assert "POST" in response["Allow"]


def test_problem_409_carries_extra(api_client):
    response = api_client.get("/api/test/raise/conflict/")

    body = assert_problem(response, 409, "order_not_payable")
    assert body["state"] == "cancelled"


def test_problem_415_wrong_content_type(api_client):
    response = api_client.generic("POST", "/api/test/echo/", "quantity=1", content_type="text/plain")

    assert_problem(response, 415, "unsupported_media_type")


def test_problem_422(api_client):
    response = api_client.get("/api/test/raise/unprocessable/")

    body = assert_problem(response, 422, "idempotency_key_reused")
    assert body["field"] == "Idempotency-Key"


def test_problem_429_retry_after(api_client):
    response = api_client.get("/api/test/raise/throttled/")

    assert_problem(response, 429, "rate_limited")
    assert int(response["Retry-After"]) >= 7


def test_problem_500_in_drf_view(client_no_raise):
    response = client_no_raise.get("/api/test/raise/crash/")

    body = assert_problem(response, 500, "internal_error")
    assert "boom" not in body["detail"]


def test_problem_500_django_view(client_no_raise):
    response = client_no_raise.get("/api/test/crash/")

    assert_problem(response, 500, "internal_error")


def test_problem_503_retry_after(api_client):
    response = api_client.get("/api/test/raise/unavailable/")

    assert_problem(response, 503, "search_unavailable")
    assert response["Retry-After"] == "11"


def test_problem_503_database_down(api_client):
    response = api_client.get("/api/test/raise/database/")

    assert_problem(response, 503, "database_unavailable")
    assert response["Retry-After"] == "5"


def test_non_api_404_stays_html(client_no_raise):
    response = client_no_raise.get("/not-api/")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")

"""/healthz and /readyz against the real stack, including a stopped service."""
import pytest

from tests.services import closed_port, stack

pytestmark = pytest.mark.django_db


def test_healthz_answers_without_dependencies(api_client, settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{closed_port()}/0"

    response = api_client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_all_services_up(api_client):
    response = api_client.get("/readyz")
    body = response.json()

    assert response.status_code == 200, body
    assert body["status"] == "ready"
    assert {name: result["status"] for name, result in body["services"].items()} == {
        "postgres": "up",
        "redis": "up",
        "kafka": "up",
        "opensearch": "up",
    }


@pytest.mark.parametrize(
    ("service", "setting", "url_template"),
    [
        ("redis", "REDIS_URL", "redis://127.0.0.1:{port}/0"),
        ("kafka", "KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:{port}"),
        ("opensearch", "OPENSEARCH_URL", "http://127.0.0.1:{port}"),
    ],
)
def test_readyz_names_unreachable_service(api_client, settings, service, setting, url_template):
    setattr(settings, setting, url_template.format(port=closed_port()))

    response = api_client.get("/readyz")
    body = response.json()

    assert response.status_code == 503
    assert response["Content-Type"] == "application/problem+json"
    assert body["code"] == "dependencies_unavailable"
    assert body["down"] == [service]
    assert body["services"][service]["error"]


def test_readyz_names_unreachable_postgres(api_client, monkeypatch):
    from django.db import connections

    # Only the probe reads this copy of the settings; the test's own connection stays open.
    monkeypatch.setitem(connections["default"].settings_dict, "PORT", closed_port())

    response = api_client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["down"] == ["postgres"]


@pytest.mark.services
def test_readyz_with_redis_stopped(api_client):
    stack("down", "redis")
    try:
        response = api_client.get("/readyz")
        body = response.json()
    finally:
        stack("up", "redis")

    assert response.status_code == 503
    assert body["down"] == ["redis"]
    assert api_client.get("/readyz").status_code == 200

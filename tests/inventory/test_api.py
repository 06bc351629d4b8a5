"""Staff inventory API: POST /api/v1/inventory/adjustments/ and GET /api/v1/inventory/{sku}/."""
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model

from inventory.models import StockItem, StockMovement
from inventory.services import commit, reserve
from tests.factories import make_stock

pytestmark = pytest.mark.django_db

ADJUST_URL = "/api/v1/inventory/adjustments/"
PROBLEM = "application/problem+json"


@pytest.fixture
def staff_client(api_client):
    user = get_user_model().objects.create_user(username="stockkeeper", password="long enough pw", is_staff=True)
    api_client.force_authenticate(user)
    return api_client


@pytest.fixture
def mug():
    """MUG: 5 on hand, 3 of them reserved by order:1."""
    make_stock("MUG", 5)
    reserve(lines=[("MUG", 3)], reference="order:1", ttl=timedelta(minutes=5))


def assert_problem(response, status: int, code: str) -> dict:
    assert response.status_code == status
    assert response["Content-Type"] == PROBLEM
    body = response.json()
    assert body["code"] == code
    return body


def snapshot() -> tuple:
    """Everything an adjustment could change, to show that a rejected one changed nothing."""
    return (
        list(StockItem.objects.order_by("sku").values_list("sku", "on_hand", "reserved")),
        StockMovement.objects.count(),
    )


def test_adjust_returns_levels(staff_client, mug):
    response = staff_client.post(ADJUST_URL, {"sku": "MUG", "delta": 4, "reason": "found a box"}, format="json")

    body = response.json()
    assert response.status_code == 201
    assert body["sku"] == "MUG"
    assert body["on_hand"] == 9
    assert body["reserved"] == 3
    assert body["available"] == 6


def test_adjust_writes_ledger_row(staff_client, mug):
    staff_client.post(ADJUST_URL, {"sku": "MUG", "delta": -2, "reason": "breakage"}, format="json")

    movement = StockMovement.objects.latest("id")
    assert movement.kind == StockMovement.Kind.ADJUSTMENT
    assert movement.quantity == -2
    assert movement.reason == "breakage"
    assert movement.actor == "stockkeeper"


def test_adjust_unknown_sku_404(staff_client, mug):
    before = snapshot()

    response = staff_client.post(ADJUST_URL, {"sku": "GHOST", "delta": 1, "reason": "count"}, format="json")

    assert_problem(response, 404, "sku_not_found")
    assert snapshot() == before


def test_adjust_below_reserved_409(staff_client, mug):
    before = snapshot()

    response = staff_client.post(ADJUST_URL, {"sku": "MUG", "delta": -3, "reason": "count"}, format="json")

    body = assert_problem(response, 409, "stock_below_reserved")
    assert body["on_hand"] == 5
    assert body["reserved"] == 3
    assert body["available"] == 2
    assert body["delta"] == -3
    assert snapshot() == before


def test_adjust_negative_409(staff_client, mug):
    before = snapshot()

    response = staff_client.post(ADJUST_URL, {"sku": "MUG", "delta": -6, "reason": "count"}, format="json")

    body = assert_problem(response, 409, "on_hand_negative")
    assert body["on_hand"] == 5
    assert body["delta"] == -6
    assert snapshot() == before


@pytest.mark.parametrize("delta", [0, 1.5, 2.0, "3", "three", True, None, 2**31])
def test_adjust_bad_delta_400(staff_client, mug, delta):
    before = snapshot()

    response = staff_client.post(ADJUST_URL, {"sku": "MUG", "delta": delta, "reason": "count"}, format="json")

    body = assert_problem(response, 400, "validation_error")
    assert body["field"] == "delta"
    assert snapshot() == before


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"delta": 1, "reason": "count"}, "sku"),
        ({"sku": "MUG", "reason": "count"}, "delta"),
        ({"sku": "MUG", "delta": 1}, "reason"),
        ({"sku": "MUG", "delta": 1, "reason": ""}, "reason"),
    ],
)
def test_adjust_missing_field_400(staff_client, mug, payload, field):
    before = snapshot()

    response = staff_client.post(ADJUST_URL, payload, format="json")

    body = assert_problem(response, 400, "validation_error")
    assert body["field"] == field
    assert snapshot() == before


def test_adjust_needs_staff(api_client, mug):
    user = get_user_model().objects.create_user(username="shopper", password="long enough pw")
    api_client.force_authenticate(user)
    before = snapshot()

    response = api_client.post(ADJUST_URL, {"sku": "MUG", "delta": 1, "reason": "count"}, format="json")

    assert_problem(response, 403, "permission_denied")
    assert snapshot() == before


def test_adjust_needs_login(api_client, mug):
    response = api_client.post(ADJUST_URL, {"sku": "MUG", "delta": 1, "reason": "count"}, format="json")

    assert_problem(response, 403, "not_authenticated")


def test_detail_shows_counters(staff_client, mug):
    response = staff_client.get("/api/v1/inventory/MUG/")

    body = response.json()
    assert response.status_code == 200
    assert body["on_hand"] == 5
    assert body["reserved"] == 3
    assert body["available"] == 2


def test_detail_lists_active_reservations(staff_client, mug):
    make_stock("CUP", 5)
    reserve(lines=[("MUG", 1), ("CUP", 1)], reference="order:2", ttl=timedelta(minutes=5))
    reserve(lines=[("CUP", 1)], reference="order:3", ttl=timedelta(minutes=5))
    commit(reference="order:1")

    response = staff_client.get("/api/v1/inventory/MUG/")

    reservations = response.json()["active_reservations"]
    assert [entry["reference"] for entry in reservations] == ["order:2"]
    assert reservations[0]["quantity"] == 1
    assert reservations[0]["expires_at"]


def test_detail_unknown_sku_404(staff_client):
    response = staff_client.get("/api/v1/inventory/GHOST/")

    assert_problem(response, 404, "sku_not_found")


def test_detail_needs_staff(api_client, mug):
    response = api_client.get("/api/v1/inventory/MUG/")

    assert_problem(response, 403, "not_authenticated")

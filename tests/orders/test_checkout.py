"""POST /api/v1/checkout/: one committed decision, nothing half-written, idempotent by key."""
from decimal import Decimal

import pytest

from cart.models import Cart
from commerce.models import IdempotencyKey, OutboxEvent
from inventory.models import Reservation, StockItem
from orders.models import Order, OrderLine
from tests.shopping import Shopper, stocked_variant

pytestmark = pytest.mark.django_db


@pytest.fixture
def shopper() -> Shopper:
    shopper = Shopper()
    shopper.new_cart()
    return shopper


def nothing_written() -> None:
    assert not Order.objects.exists()
    assert not OrderLine.objects.exists()
    assert not Reservation.objects.exists()
    assert not OutboxEvent.objects.filter(event_type="order.placed").exists()
    assert not IdempotencyKey.objects.exists()


def test_checkout_places_order(shopper):
    variant = stocked_variant(price="19.99", on_hand=5)
    shopper.add(variant.sku, 2)

    response = shopper.checkout(key="checkout-1")
    body = response.json()

    assert response.status_code == 201
    assert body["state"] == "pending_payment"
    assert body["total"] == "39.98"
    assert body["lines"] == [
        {
            "sku": variant.sku,
            "product_title": variant.product.title,
            "variant_title": "Default",
            "unit_price": "19.99",
            "quantity": 2,
            "line_total": "39.98",
        }
    ]
    assert response["Location"] == f"/api/v1/orders/{body['id']}/"
    assert StockItem.objects.get(sku=variant.sku).reserved == 2
    assert Cart.objects.get(pk=shopper.cart_id).status == "checked_out"
    event = OutboxEvent.objects.get(event_type="order.placed")
    assert event.aggregate_id == body["id"]
    assert event.aggregate_version == 1
    assert IdempotencyKey.objects.get(key="checkout-1").response_status == 201


def test_checkout_history_starts_pending(shopper):
    variant = stocked_variant()
    shopper.add(variant.sku)

    body = shopper.checkout().json()

    assert [(entry["from_state"], entry["to_state"]) for entry in body["history"]] == [("", "pending_payment")]


def test_checkout_missing_key_400(shopper):
    variant = stocked_variant()
    shopper.add(variant.sku)

    response = shopper.client.post(
        "/api/v1/checkout/", {"cart_id": shopper.cart_id}, format="json", **shopper.headers()
    )

    assert response.status_code == 400
    assert response.json()["code"] == "idempotency_key_missing"
    nothing_written()


def test_checkout_replay_same_key(shopper):
    variant = stocked_variant()
    shopper.add(variant.sku)
    first = shopper.checkout(key="same-key")

    second = shopper.checkout(key="same-key")

    assert second.status_code == 201
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"
    assert Order.objects.count() == 1


def test_checkout_key_reused_other_body_422(shopper):
    variant = stocked_variant()
    shopper.add(variant.sku)
    shopper.checkout(key="reused")

    response = shopper.checkout(key="reused", expected_total="1.00")

    assert response.status_code == 422
    assert response.json()["code"] == "idempotency_key_reused"


def test_checkout_price_changed_409(shopper):
    variant = stocked_variant(price="10.00")
    shopper.add(variant.sku, 3)
    variant.price = Decimal("12.00")
    variant.save()

    response = shopper.checkout()
    body = response.json()

    assert response.status_code == 409
    assert body["code"] == "price_changed"
    assert body["changed_lines"] == [{"sku": variant.sku, "price_seen": "10.00", "price": "12.00"}]
    assert body["total"] == "36.00"
    nothing_written()


def test_checkout_confirmed_new_total(shopper):
    variant = stocked_variant(price="10.00")
    shopper.add(variant.sku, 3)
    variant.price = Decimal("12.00")
    variant.save()

    response = shopper.checkout(expected_total="36.00")

    assert response.status_code == 201
    assert response.json()["total"] == "36.00"


def test_checkout_after_cart_shown_new_price(shopper):
    variant = stocked_variant(price="10.00")
    shopper.add(variant.sku, 1)
    variant.price = Decimal("11.00")
    variant.save()

    # Showing the cart records the new price, so the shopper has seen it.
    shopper.cart()
    response = shopper.checkout()

    assert response.status_code == 201
    assert response.json()["total"] == "11.00"


def test_checkout_out_of_stock_names_skus(shopper):
    plenty = stocked_variant(on_hand=10)
    scarce = stocked_variant(on_hand=1)
    shopper.add(plenty.sku, 1)
    shopper.add(scarce.sku, 2)

    response = shopper.checkout()

    assert response.status_code == 409
    assert response.json()["code"] == "out_of_stock"
    assert scarce.sku in response.json()["detail"]
    nothing_written()
    assert StockItem.objects.get(sku=plenty.sku).reserved == 0
    assert Cart.objects.get(pk=shopper.cart_id).status == "open"


def test_checkout_empty_cart_409(shopper):
    response = shopper.checkout()

    assert response.status_code == 409
    assert response.json()["code"] == "cart_empty"
    nothing_written()


def test_checkout_second_tab_gets_order_id(shopper):
    variant = stocked_variant()
    shopper.add(variant.sku)
    first = shopper.checkout(key="tab-1").json()

    response = shopper.checkout(key="tab-2")

    assert response.status_code == 409
    assert response.json()["code"] == "cart_checked_out"
    assert response.json()["order_id"] == first["id"]
    assert Order.objects.count() == 1


def test_checkout_foreign_cart_404(shopper):
    variant = stocked_variant()
    shopper.add(variant.sku)
    stranger = Shopper()
    stranger.new_cart()
    stranger.cart_id = shopper.cart_id

    response = stranger.checkout()

    assert response.status_code == 404
    nothing_written()


def test_checkout_queues_nothing_on_rollback(shopper, django_capture_on_commit_callbacks):
    scarce = stocked_variant(on_hand=0)
    shopper.add(scarce.sku)

    with django_capture_on_commit_callbacks() as callbacks:
        response = shopper.checkout()

    assert response.status_code == 409
    assert callbacks == []

"""The order state machine: legal moves only, history and events in the same transaction."""
from datetime import timedelta

import pytest
from django.utils import timezone

from commerce.errors import ConflictError
from commerce.models import OutboxEvent
from inventory.models import Reservation, StockItem
from orders.models import Order, OrderTransition
from orders.services import order_cancel, order_expire, order_expire_overdue, order_fulfil, order_mark_paid
from tests.concurrency import run_concurrently
from tests.shopping import Shopper, stocked_variant


def place_order(quantity: int = 1, on_hand: int = 5) -> tuple[Shopper, dict, str]:
    variant = stocked_variant(on_hand=on_hand)
    shopper = Shopper()
    shopper.new_cart()
    shopper.add(variant.sku, quantity)
    response = shopper.checkout()
    assert response.status_code == 201, response.content
    return shopper, response.json(), variant.sku


@pytest.mark.django_db
def test_cancel_releases_reservation():
    shopper, order, sku = place_order(quantity=2)

    response = shopper.cancel(order["id"])

    assert response.status_code == 200
    assert response.json()["state"] == "cancelled"
    assert StockItem.objects.get(sku=sku).reserved == 0
    assert Reservation.objects.get(reference=f"order:{order['id']}").status == "released"
    assert OutboxEvent.objects.filter(event_type="order.cancelled", aggregate_id=order["id"]).count() == 1


@pytest.mark.django_db
def test_cancel_requires_key():
    shopper, order, _ = place_order()

    response = shopper.client.post(f"/api/v1/orders/{order['id']}/cancel/", {}, format="json", **shopper.headers())

    assert response.status_code == 400
    assert response.json()["code"] == "idempotency_key_missing"


@pytest.mark.django_db
def test_cancelled_order_cannot_be_paid():
    shopper, order, _ = place_order()
    shopper.cancel(order["id"])

    response = shopper.pay(order["id"])

    assert response.status_code == 409
    assert response.json()["code"] == "order_not_payable"
    assert response.json()["state"] == "cancelled"


@pytest.mark.django_db
def test_paid_order_cannot_be_cancelled():
    shopper, order, _ = place_order()
    order_mark_paid(order_id=order["id"], payment_id="test", actor="tests")

    response = shopper.cancel(order["id"])

    assert response.status_code == 409
    assert response.json()["code"] == "illegal_transition"
    assert response.json()["state"] == "paid"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("setup", "move"),
    [
        ("pending", lambda order_id: order_fulfil(order_id=order_id, actor="tests")),
        ("cancelled", lambda order_id: order_expire(order_id=order_id)),
        ("cancelled", lambda order_id: order_fulfil(order_id=order_id, actor="tests")),
        ("paid", lambda order_id: order_expire(order_id=order_id)),
        ("paid", lambda order_id: order_cancel(order_id=order_id, actor="tests", reason="test")),
    ],
)
def test_illegal_transitions_raise_409(setup, move):
    _, order, _ = place_order()
    if setup == "cancelled":
        order_cancel(order_id=order["id"], actor="tests", reason="test")
    elif setup == "paid":
        order_mark_paid(order_id=order["id"], payment_id="test", actor="tests")
    history_before = OrderTransition.objects.count()

    with pytest.raises(ConflictError) as raised:
        move(order["id"])

    assert raised.value.code == "illegal_transition"
    assert raised.value.status == 409
    assert OrderTransition.objects.count() == history_before


@pytest.mark.django_db
def test_paid_commits_reservation():
    _, order, sku = place_order(quantity=2, on_hand=5)

    paid = order_mark_paid(order_id=order["id"], payment_id="p1", actor="tests")

    assert paid.state == "paid"
    stock = StockItem.objects.get(sku=sku)
    assert stock.on_hand == 3
    assert stock.reserved == 0
    assert list(paid.history.values_list("to_state", flat=True)) == ["pending_payment", "paid"]


@pytest.mark.django_db
def test_mark_paid_twice_noop():
    _, order, _ = place_order()
    order_mark_paid(order_id=order["id"], payment_id="p1", actor="tests")

    again = order_mark_paid(order_id=order["id"], payment_id="p1", actor="tests")

    assert again.state == "paid"
    assert OutboxEvent.objects.filter(event_type="order.paid").count() == 1


@pytest.mark.django_db
def test_overdue_order_expires():
    _, order, sku = place_order()
    Order.objects.filter(pk=order["id"]).update(payment_due_at=timezone.now() - timedelta(seconds=1))

    expired = order_expire_overdue()

    assert expired == 1
    assert Order.objects.get(pk=order["id"]).state == "expired"
    assert StockItem.objects.get(sku=sku).reserved == 0


@pytest.mark.django_db
def test_owner_only_sees_order():
    shopper, order, _ = place_order()
    stranger = Shopper()
    stranger.new_cart()

    mine = shopper.order(order["id"])
    theirs = stranger.order(order["id"])

    assert mine.status_code == 200
    assert theirs.status_code == 404


@pytest.mark.django_db(transaction=True)
def test_concurrent_transitions_one_wins():
    _, order, sku = place_order()

    results = run_concurrently(
        [
            lambda: order_cancel(order_id=order["id"], actor="tests", reason="race"),
            lambda: order_mark_paid(order_id=order["id"], payment_id="race", actor="tests"),
            lambda: order_expire(order_id=order["id"]),
        ]
    )

    winners = [result for result in results if isinstance(result, Order)]
    final = Order.objects.get(pk=order["id"])
    assert final.state in {"cancelled", "paid", "expired"}
    assert sum(1 for winner in winners if winner.state == final.state and winner.version == 2) >= 1
    # The losers wrote no history rows and no events.
    assert list(final.history.values_list("to_state", flat=True)) == ["pending_payment", final.state]
    assert OutboxEvent.objects.filter(aggregate_type="order", aggregate_id=order["id"]).count() == 2
    stock = StockItem.objects.get(sku=sku)
    assert stock.reserved == 0
    assert stock.on_hand == (4 if final.state == "paid" else 5)

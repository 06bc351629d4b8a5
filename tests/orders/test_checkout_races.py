"""Checkout under concurrency, against real PostgreSQL transactions."""
import uuid

import pytest
from rest_framework.test import APIClient

from commerce.errors import DomainError
from inventory.models import StockItem
from orders.models import Order
from tests.concurrency import run_concurrently
from tests.shopping import Shopper, stocked_variant

pytestmark = pytest.mark.django_db(transaction=True)


def test_same_key_twenty_times_one_order():
    variant = stocked_variant(on_hand=5)
    shopper = Shopper()
    shopper.new_cart()
    shopper.add(variant.sku, 1)

    def post():
        # A client per thread, as twenty retries from one browser would be.
        clone = Shopper(APIClient())
        clone.cart_id, clone.token = shopper.cart_id, shopper.token
        return clone.checkout(key="double-click")

    responses = run_concurrently([post for _ in range(20)])

    statuses = sorted(response.status_code for response in responses)
    assert Order.objects.count() == 1
    assert set(statuses) <= {201, 409}
    order_id = str(Order.objects.get().pk)
    for response in responses:
        body = response.json()
        if response.status_code == 201:
            assert body["id"] == order_id
        else:
            assert body["code"] in {"idempotency_key_in_progress", "cart_checked_out"}
    assert StockItem.objects.get(sku=variant.sku).reserved == 1


def test_last_unit_twenty_carts_one_order():
    variant = stocked_variant(on_hand=1)
    shoppers = []
    for _ in range(20):
        shopper = Shopper(APIClient())
        shopper.new_cart()
        shopper.add(variant.sku, 1)
        shoppers.append(shopper)

    responses = run_concurrently([lambda shopper=shopper: shopper.checkout(key=str(uuid.uuid4())) for shopper in shoppers])

    codes = [response.json().get("code") for response in responses if response.status_code != 201]
    assert sum(response.status_code == 201 for response in responses) == 1
    assert codes == ["out_of_stock"] * 19
    assert Order.objects.count() == 1
    stock = StockItem.objects.get(sku=variant.sku)
    assert stock.reserved == 1
    assert stock.on_hand == 1


def test_race_errors_are_domain_errors():
    # Guard for the helper itself: exceptions come back as values, not raised.
    results = run_concurrently([lambda: (_ for _ in ()).throw(DomainError("x", "y"))])

    assert isinstance(results[0], DomainError)

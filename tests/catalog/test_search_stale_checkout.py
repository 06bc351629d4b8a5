"""A deliberately stale search index cannot change what checkout charges or whether it has stock.

Each test shows the stale value in search first, so a passing checkout
assertion cannot be explained by the index having caught up.
"""
from __future__ import annotations

import pytest

from catalog.search.indexer import index_products
from inventory import services as inventory
from inventory.models import StockItem
from orders.models import Order
from tests.catalog.test_search_support import (  # noqa: F401 - fixtures are found by name
    SEARCH_URL,
    change_price,
    closed_port_url,
    refresh,
    search_index,
    search_prefix,
)
from tests.shopping import Shopper, stocked_variant

pytestmark = pytest.mark.django_db


def search_hit(api_client, **params) -> dict:
    results = api_client.get(SEARCH_URL, params).json()["results"]
    assert len(results) == 1, results
    return results[0]


def test_stale_price_never_charged(search_index, api_client):
    variant = stocked_variant(price="10.00", on_hand=5, title="Enamel Mug")
    index_products([variant.product_id])
    shopper = Shopper()
    shopper.new_cart()
    shopper.add(variant.sku, 2)

    change_price(variant.product, "15.00")
    refresh()
    stale = search_hit(api_client, q="enamel")
    assert (stale["price_min"], stale["version"]) == ("10.00", 1)

    at_index_price = shopper.checkout(expected_total="20.00")
    at_catalog_price = shopper.checkout(expected_total="30.00")

    assert at_index_price.status_code == 409
    assert at_index_price.json()["code"] == "price_changed"
    assert at_index_price.json()["total"] == "30.00"
    assert at_catalog_price.status_code == 201
    body = at_catalog_price.json()
    assert body["total"] == "30.00"
    assert body["lines"][0]["unit_price"] == "15.00"
    assert Order.objects.get().total == 30


def test_stale_availability_never_sells(search_index, api_client):
    variant = stocked_variant(price="40.00", on_hand=1, title="Copper Kettle")
    index_products([variant.product_id])
    inventory.adjust(sku=variant.sku, delta=-1, reason="sold in store", actor="tests")
    refresh()
    assert search_hit(api_client, q="kettle", in_stock="true")["in_stock"] is True
    shopper = Shopper()
    shopper.new_cart()
    shopper.add(variant.sku, 1)

    response = shopper.checkout()

    assert response.status_code == 409
    assert response.json()["code"] == "out_of_stock"
    assert not Order.objects.exists()
    assert StockItem.objects.get(sku=variant.sku).reserved == 0


def test_checkout_works_without_opensearch(search_index, settings):
    variant = stocked_variant(price="8.00", on_hand=3, title="Tea Towel")
    index_products([variant.product_id])
    settings.OPENSEARCH_URL = closed_port_url()
    shopper = Shopper()
    shopper.new_cart()
    assert shopper.add(variant.sku, 3).status_code in (200, 201)

    response = shopper.checkout()

    assert response.status_code == 201
    assert response.json()["total"] == "24.00"
    assert StockItem.objects.get(sku=variant.sku).reserved == 3

"""The storefront catalog shows available = on_hand - reserved per variant, as inventory changes."""
from datetime import timedelta

import pytest

from inventory.services import commit, release, reserve
from tests.factories import ProductFactory, make_stock

pytestmark = pytest.mark.django_db


@pytest.fixture
def tee():
    """A published tee with two variants, 4 and 2 units on hand."""
    product = ProductFactory(title="Basic Tee", prices=["15.00", "18.00"])
    small, large = product.variants.order_by("position")
    make_stock(small.sku, 4)
    make_stock(large.sku, 2)
    return {"small": small.sku, "large": large.sku}


def available(api_client, url: str) -> dict[str, int]:
    body = api_client.get(url).json()
    product = body["results"][0] if "results" in body else body
    return {variant["sku"]: variant["available"] for variant in product["variants"]}


def test_detail_follows_reservations(api_client, tee):
    url = "/api/v1/products/basic-tee/"
    reserve(lines=[(tee["small"], 3)], reference="order:1", ttl=timedelta(minutes=5))
    reserve(lines=[(tee["large"], 2)], reference="order:2", ttl=timedelta(minutes=5))

    assert available(api_client, url) == {tee["small"]: 1, tee["large"]: 0}

    release(reference="order:1")
    commit(reference="order:2")

    assert available(api_client, url) == {tee["small"]: 4, tee["large"]: 0}


def test_listing_follows_reservations(api_client, tee):
    reserve(lines=[(tee["small"], 1)], reference="order:1", ttl=timedelta(minutes=5))

    assert available(api_client, "/api/v1/products/") == {tee["small"]: 3, tee["large"]: 2}

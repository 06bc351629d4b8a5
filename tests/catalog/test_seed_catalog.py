"""`seed_catalog` builds the same synthetic catalog every time and never duplicates it."""
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from catalog.models import Product, ProductVariant
from inventory.models import StockItem, StockMovement

pytestmark = pytest.mark.django_db


def seed(*args: str) -> str:
    stdout = StringIO()
    call_command("seed_catalog", *args, stdout=stdout)
    return stdout.getvalue()


def snapshot() -> list[tuple]:
    return list(
        ProductVariant.objects.order_by("sku").values_list("sku", "price", "product__handle", "product__title")
    )


def test_seed_is_deterministic_across_batch_sizes():
    seed("--products", "30")
    first = snapshot()
    first_stock = dict(StockItem.objects.values_list("sku", "on_hand"))
    Product.objects.all().delete()
    StockItem.objects.all().delete()

    seed("--products", "30", "--batch-size", "7")

    assert snapshot() == first
    assert dict(StockItem.objects.values_list("sku", "on_hand")) == first_stock


def test_seed_twice_adds_nothing():
    seed("--products", "25")

    output = seed("--products", "25")

    assert output.startswith("products: 0 created, 25 already present")
    assert Product.objects.count() == 25


def test_seed_stock_matches_ledger():
    seed("--products", "20")

    for sku, on_hand in StockItem.objects.values_list("sku", "on_hand"):
        ledger = sum(StockMovement.objects.filter(sku=sku).values_list("quantity", flat=True))
        assert ledger == on_hand, sku
    assert StockItem.objects.count() == ProductVariant.objects.count()


def test_seed_sets_price_range():
    seed("--products", "10")

    for product in Product.objects.prefetch_related("variants"):
        prices = [variant.price for variant in product.variants.all()]
        assert product.price_min == min(prices)
        assert product.price_max == max(prices)


def test_seed_rejects_zero_products():
    with pytest.raises(CommandError, match="at least 1"):
        seed("--products", "0")

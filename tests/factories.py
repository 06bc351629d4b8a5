"""factory-boy factories for catalog and inventory rows."""
from decimal import Decimal

import factory
from django.utils.text import slugify

from catalog.models import Category, Product, ProductImage, ProductVariant
from catalog.services import category_get_or_create_path, product_refresh_price_range
from inventory.models import StockItem
from inventory.services import receive


def make_category(*names: str) -> Category:
    return category_get_or_create_path(names=list(names))


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product
        skip_postgeneration_save = True

    title = factory.Sequence(lambda n: f"Product {n:04d}")
    handle = factory.LazyAttribute(lambda product: slugify(product.title))
    body_html = "<p>A product.</p>"
    body_text = "A product."
    vendor = "Test Vendor"
    published = True
    currency = "USD"

    @factory.post_generation
    def prices(product, create, extracted, **kwargs):
        """Create one variant per price given, e.g. ProductFactory(prices=["10.00", "12.50"])."""
        if not create:
            return
        for position, price in enumerate(extracted or ["10.00"], start=1):
            VariantFactory(product=product, price=Decimal(price), position=position)
        product_refresh_price_range(product_id=product.pk)
        product.refresh_from_db()


class VariantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ProductVariant

    product = factory.SubFactory(ProductFactory)
    sku = factory.Sequence(lambda n: f"SKU-{n:05d}")
    price = Decimal("10.00")
    currency = "USD"


class ImageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ProductImage

    product = factory.SubFactory(ProductFactory)
    src = factory.Sequence(lambda n: f"https://images.example.test/{n}.jpg")
    position = factory.Sequence(lambda n: n + 1)


class StockItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = StockItem

    sku = factory.Sequence(lambda n: f"SKU-{n:05d}")
    on_hand = 10
    reserved = 0


def make_stock(sku: str, on_hand: int) -> StockItem:
    """Create a stock row through inventory's service, so the ledger agrees with `on_hand`.

    StockItemFactory writes no ledger row, which reconciliation reports as drift.
    """
    return receive(sku=sku, quantity=on_hand, reason="test stock", actor="tests")

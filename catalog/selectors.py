"""Read side of the catalog for the storefront API."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Exists, OuterRef, Prefetch, QuerySet

from catalog.models import Category, Product, ProductImage, ProductVariant
from inventory.selectors import skus_in_stock


def published_products() -> QuerySet[Product]:
    """Return published products with everything a listing page shows, in a fixed number of queries."""
    return (
        Product.objects.filter(published=True)
        .select_related("category")
        .prefetch_related(
            Prefetch("variants", queryset=ProductVariant.objects.order_by("position", "id")),
            Prefetch("images", queryset=ProductImage.objects.order_by("position", "id")),
        )
    )


def category_with_descendants(category: Category) -> QuerySet[Category]:
    return Category.objects.get_tree(category)


def filter_in_stock(queryset: QuerySet[Product], in_stock: bool) -> QuerySet[Product]:
    """Keep products with (or, when `in_stock` is False, without) any variant that has available units."""
    has_stock = Exists(
        ProductVariant.objects.filter(product=OuterRef("pk"), sku__in=skus_in_stock())
    )
    return queryset.filter(has_stock) if in_stock else queryset.exclude(has_stock)


def categories() -> QuerySet[Category]:
    return Category.objects.order_by("path")


@dataclass(frozen=True)
class VariantPrice:
    """A variant's current price as PostgreSQL stores it: what cart and checkout price from."""

    sku: str
    price: Decimal
    currency: str
    product_id: int
    product_handle: str
    product_title: str
    variant_title: str
    published: bool
    category_slug: str | None


def variant_prices(skus: Iterable[str]) -> dict[str, VariantPrice]:
    """Return current prices for the given SKUs from PostgreSQL; unknown SKUs are absent from the result.

    Never reads a cache or the search index: callers use it to decide what a
    shopper pays.
    """
    variants = ProductVariant.objects.filter(sku__in=list(skus)).select_related("product__category")
    return {
        variant.sku: VariantPrice(
            sku=variant.sku,
            price=variant.price,
            currency=variant.currency,
            product_id=variant.product_id,
            product_handle=variant.product.handle,
            product_title=variant.product.title,
            variant_title=variant.title,
            published=variant.product.published,
            category_slug=variant.product.category.slug if variant.product.category_id else None,
        )
        for variant in variants
    }

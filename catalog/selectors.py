"""Read side of the catalog for the storefront API."""
from __future__ import annotations

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

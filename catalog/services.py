"""Write side of the catalog: versioning and category paths.

The import (catalog.importing), the synthetic seeder and the admin all write
through these functions, so the version rule lives in one place.
"""
from __future__ import annotations

from collections.abc import Sequence

from django.db import transaction
from django.db.models import F, Max, Min
from django.utils.text import slugify

from catalog.models import Category, Product, ProductVariant


def product_bump_version(*, product_id: int) -> int:
    """Increment the product's version and refresh its denormalized price range.

    Must run in the transaction that changed the product or its variants, so
    that readers never see a change without its new version. Returns the new
    version.
    """
    with transaction.atomic():
        prices = ProductVariant.objects.filter(product_id=product_id).aggregate(low=Min("price"), high=Max("price"))
        Product.objects.filter(pk=product_id).update(
            version=F("version") + 1,
            price_min=prices["low"],
            price_max=prices["high"],
        )
        return Product.objects.values_list("version", flat=True).get(pk=product_id)


def product_refresh_price_range(*, product_id: int) -> None:
    """Copy the variants' lowest and highest price onto a product without bumping its version (new products only)."""
    prices = ProductVariant.objects.filter(product_id=product_id).aggregate(low=Min("price"), high=Max("price"))
    Product.objects.filter(pk=product_id).update(price_min=prices["low"], price_max=prices["high"])


def category_get_or_create_path(*, names: Sequence[str]) -> Category | None:
    """Return the category at the end of `names` (root first), creating missing nodes.

    Two imports creating the same new node at once would collide on the unique
    slug; the loser's product transaction fails and the importer reports it.
    """
    parent: Category | None = None
    slug_parts: list[str] = []
    for name in names:
        name = name.strip()
        if not name:
            continue
        slug_parts.append(slugify(name) or "category")
        slug = "-".join(slug_parts)[:255]

        existing = Category.objects.filter(slug=slug).first()
        if existing is not None:
            parent = existing
            continue

        if parent is None:
            parent = Category.objects.add_root({"name": name, "slug": slug})
        else:
            # treebeard caches the child count on the instance; reload before adding.
            parent = Category.objects.add_child(Category.objects.get(pk=parent.pk), {"name": name, "slug": slug})
    return parent

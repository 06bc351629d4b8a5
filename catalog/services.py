"""Write side of the catalog: versioning and category paths.

The import (catalog.importing), the synthetic seeder and the admin all write
through these functions, so the version rule lives in one place.
"""
from __future__ import annotations

from collections.abc import Sequence
from functools import partial

from django.db import transaction
from django.db.models import F, Max, Min
from django.utils.text import slugify

from catalog.cache import invalidate_product_after_commit
from catalog.models import Category, Product, ProductVariant
from commerce.outbox import outbox_write


def product_event_payload(product: Product) -> dict:
    return {
        "product_id": product.pk,
        "handle": product.handle,
        "version": product.version,
        "published": product.published,
        "price_min": product.price_min,
        "price_max": product.price_max,
        "currency": product.currency,
    }


def product_record_event(*, product_id: int, event_type: str) -> None:
    """Write a product event at the product's current version, in the caller's transaction.

    `event_type` is product.created, product.updated, product.unpublished or
    product.deleted. Read models use the version to ignore older events.
    """
    product = Product.objects.get(pk=product_id)
    outbox_write(
        event_type=event_type,
        aggregate_type="product",
        aggregate_id=str(product.pk),
        aggregate_version=product.version,
        payload=product_event_payload(product),
    )


def product_record_change(*, product_id: int, was_published: bool) -> int:
    """Bump the version after a change and write product.updated, or product.unpublished when it went off sale."""
    version = product_bump_version(product_id=product_id)
    is_published = Product.objects.values_list("published", flat=True).get(pk=product_id)
    event_type = "product.unpublished" if was_published and not is_published else "product.updated"
    product_record_event(product_id=product_id, event_type=event_type)
    # TODO: the catalog event consumer will call catalog.cache.invalidate_product for
    # this event. Until it exists, this in-process call keeps the cache converging.
    transaction.on_commit(partial(invalidate_product_after_commit, product_id=product_id, version=version))
    return version


def product_delete(*, product_id: int) -> None:
    """Delete a product, writing product.deleted one version above its last, so no older event revives it."""
    with transaction.atomic():
        product = Product.objects.select_for_update().get(pk=product_id)
        product.version += 1
        outbox_write(
            event_type="product.deleted",
            aggregate_type="product",
            aggregate_id=str(product.pk),
            aggregate_version=product.version,
            payload={**product_event_payload(product), "published": False},
        )
        product.delete()
        # TODO: moves to the catalog event consumer with product.deleted, like the call above.
        transaction.on_commit(
            partial(invalidate_product_after_commit, product_id=product_id, version=product.version)
        )


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

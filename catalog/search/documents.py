"""Build search documents from PostgreSQL, the only source the index is ever written from.

Event payloads are never copied into the index: every write re-reads the
product. A late or replayed event therefore writes the product's current
state at its current version, and the external version check in OpenSearch
only has to settle races between writers that read PostgreSQL at different
moments.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from catalog.models import Category, Product, ProductVariant
from inventory.selectors import availability_by_sku


@dataclass(frozen=True)
class IndexAction:
    """One document to write, with the catalog version it is written at."""

    product_id: int
    version: int
    document: dict[str, Any]

    @property
    def published(self) -> bool:
        return bool(self.document["published"])


def tombstone(product_id: int, version: int) -> IndexAction:
    """Build the document of an unpublished or deleted product.

    Searches filter it out. It stays in the index so that its version keeps
    rejecting writes from older reads. OpenSearch keeps the version of a
    deleted document only for index.gc_deletes (60 s by default), so after a
    real delete a slow writer could bring the product back.
    """
    return IndexAction(
        product_id=product_id,
        version=version,
        document={
            "product_id": product_id,
            "published": False,
            "version": version,
            "indexed_at": timezone.now().isoformat(),
        },
    )


def build_actions(product_ids: Iterable[int], *, fallback_versions: Mapping[int, int] | None = None) -> list[IndexAction]:
    """Build the current document of each product: a full document when published, else a tombstone.

    A product without a row (deleted) gets a tombstone at its entry in
    `fallback_versions` (the version of the delete event), or nothing when it
    has none. Costs four queries, whatever the number of products.
    """
    wanted = sorted(set(product_ids))
    fallback_versions = fallback_versions or {}
    # The rows, with their versions, are read before the variants and the stock.
    # The later reads can only see the same state or a newer one. A document can
    # therefore carry newer data than its version indicates, never older, and the
    # event of the newer version still overwrites it.
    products = list(
        Product.objects.filter(pk__in=wanted)
        .select_related("category")
        .only(
            "pk", "handle", "title", "body_text", "tags", "published", "price_min", "price_max", "currency",
            "version", "category__path", "category__depth", "category__name", "category__slug",
        )
    )
    published = [product for product in products if product.published]
    variants = _variants_by_product([product.pk for product in published])
    ancestors = _ancestors_by_path(product.category for product in published if product.category is not None)
    availability = availability_by_sku(variant.sku for rows in variants.values() for variant in rows)
    checked_at = timezone.now().isoformat()

    actions = []
    found = set()
    for product in products:
        found.add(product.pk)
        if not product.published:
            actions.append(tombstone(product.pk, product.version))
            continue
        document = _document(product, variants.get(product.pk, []), ancestors, availability)
        document["availability_checked_at"] = checked_at
        actions.append(IndexAction(product_id=product.pk, version=product.version, document=document))
    for product_id in wanted:
        if product_id not in found and product_id in fallback_versions:
            actions.append(tombstone(product_id, fallback_versions[product_id]))
    return actions


def _document(
    product: Product,
    variants: list[ProductVariant],
    ancestors: Mapping[str, Category],
    availability: Mapping[str, int],
) -> dict[str, Any]:
    category = product.category
    path = _category_path(category, ancestors) if category is not None else []
    options: dict[tuple[str, str], None] = {}
    for variant in variants:
        for option in variant.options:
            options[(option["name"], option["value"])] = None
    return {
        "product_id": product.pk,
        "handle": product.handle,
        "published": True,
        "version": product.version,
        "name": product.title,
        "description": product.body_text,
        "tags": list(product.tags),
        "category_slug": category.slug if category is not None else None,
        "category_name": category.name if category is not None else None,
        "category_path": [node.name for node in path],
        "category_slugs": [node.slug for node in path],
        "skus": [variant.sku for variant in variants],
        "options": [{"name": name, "value": value} for name, value in options],
        # Strings, so that no price passes through a binary float; OpenSearch parses them for range queries.
        "price_min": _money(product.price_min),
        "price_max": _money(product.price_max),
        "currency": product.currency,
        "in_stock": any(availability.get(variant.sku, 0) > 0 for variant in variants),
        "indexed_at": timezone.now().isoformat(),
    }


def _money(value) -> str | None:
    return None if value is None else str(value)


def _variants_by_product(product_ids: list[int]) -> dict[int, list[ProductVariant]]:
    rows: dict[int, list[ProductVariant]] = {}
    variants = (
        ProductVariant.objects.filter(product_id__in=product_ids)
        .only(
            "product_id", "sku", "position",
            "option1_name", "option1_value", "option2_name", "option2_value", "option3_name", "option3_value",
        )
        .order_by("product_id", "position", "id")
    )
    for variant in variants:
        rows.setdefault(variant.product_id, []).append(variant)
    return rows


def _ancestors_by_path(categories: Iterable[Category]) -> dict[str, Category]:
    """Load every ancestor of the given categories in one query, keyed by materialized path."""
    paths = set()
    for category in categories:
        # treebeard's materialized path: each level adds `steplen` characters.
        for depth in range(1, category.depth + 1):
            paths.add(category.path[: depth * Category.steplen])
    if not paths:
        return {}
    return {node.path: node for node in Category.objects.filter(path__in=paths).only("path", "depth", "name", "slug")}


def _category_path(category: Category, ancestors: Mapping[str, Category]) -> list[Category]:
    """Return the categories from the root down to `category`."""
    return [
        ancestors[category.path[: depth * Category.steplen]]
        for depth in range(1, category.depth + 1)
        if category.path[: depth * Category.steplen] in ancestors
    ]

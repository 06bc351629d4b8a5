"""Apply parsed Shopify product records to the catalog, one transaction per product.

A record either lands whole (product, variants, images, stock) or not at all,
and the product's version is bumped only when one of its stored fields changed,
so re-importing the same file is a no-op.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from django.db import transaction

from catalog.models import Product, ProductImage, ProductVariant
from catalog.services import (
    category_get_or_create_path,
    product_record_change,
    product_record_event,
    product_refresh_price_range,
)
from catalog.shopify_csv import ProductRecord, RowError, VariantRecord
from commerce.logging import get_logger
from inventory.services import stock_set_on_hand

log = get_logger(__name__)


class ImportRowError(RowError):
    """A parsed row that conflicts with the stored catalog, reported at its line."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(reason)
        self.line = line


@dataclass
class ImportOutcome:
    status: Literal["created", "updated", "unchanged"]
    variants: int
    stock_changes: int
    version: int


def _variant_fields(record: VariantRecord, *, position: int, currency: str) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "position": position,
        "price": record.price,
        "compare_at_price": record.compare_at_price,
        "currency": currency,
        "weight_grams": record.weight_grams,
        "weight_unit": record.weight_unit,
        "barcode": record.barcode,
        "image_src": record.image_src,
        "requires_shipping": record.requires_shipping,
        "taxable": record.taxable,
    }
    padded = record.options + [("", "")] * (3 - len(record.options))
    for number, (name, value) in enumerate(padded, start=1):
        fields[f"option{number}_name"] = name
        fields[f"option{number}_value"] = value
    return fields


def _apply_changes(instance: Any, fields: dict[str, Any]) -> list[str]:
    """Set the fields that differ on `instance` and return their names."""
    changed = [name for name, value in fields.items() if getattr(instance, name) != value]
    for name in changed:
        setattr(instance, name, fields[name])
    return changed


def _check_sku_ownership(record: ProductRecord) -> None:
    skus = [variant.sku for variant in record.variants]
    owned = (
        ProductVariant.objects.filter(sku__in=skus)
        .exclude(product__handle=record.handle)
        .values_list("sku", "product__handle")
        .first()
    )
    if owned is not None:
        sku, other_handle = owned
        line = next(variant.line for variant in record.variants if variant.sku == sku)
        raise ImportRowError(line, f"SKU {sku!r} already belongs to product {other_handle!r}")


def product_import(*, record: ProductRecord, currency: str, actor: str) -> ImportOutcome:
    """Create or update one product from its parsed record, in one transaction.

    Raises ImportRowError when the record conflicts with the stored catalog,
    such as a SKU owned by another product. Raises inventory's DomainError when
    a stock level cannot be set. Nothing of the product is written in either case.
    """
    with transaction.atomic():
        _check_sku_ownership(record)

        category = category_get_or_create_path(names=record.category_path) if record.category_path else None
        product_fields = {
            "title": record.title,
            "body_html": record.body_html,
            "body_text": record.body_text,
            "vendor": record.vendor,
            "product_type": record.product_type,
            "tags": record.tags,
            "published": record.published,
            "category": category,
            "seo_title": record.seo_title,
            "seo_description": record.seo_description,
            "currency": currency,
        }

        # The row lock makes the import the product's single writer while it runs.
        product = Product.objects.select_for_update().filter(handle=record.handle).first()
        created = product is None
        was_published = product.published if product is not None else False
        changed = False
        if product is None:
            product = Product.objects.create(handle=record.handle, **product_fields)
        else:
            changed_fields = _apply_changes(product, product_fields)
            if changed_fields:
                product.save(update_fields=[*changed_fields, "updated_at"])
                changed = True

        changed |= _sync_variants(product, record, currency=currency)
        changed |= _sync_images(product, record)

        if created:
            product_refresh_price_range(product_id=product.pk)
            product_record_event(product_id=product.pk, event_type="product.created")
            version = 1
        elif changed:
            version = product_record_change(product_id=product.pk, was_published=was_published)
        else:
            version = product.version

        stock_changes = 0
        # SKU order, the order reserve() locks stock rows in, so an import and a
        # multi-line checkout of the same SKUs cannot deadlock.
        for variant in sorted(record.variants, key=lambda variant: variant.sku):
            if variant.inventory_quantity is None:
                continue
            stock_changes += stock_set_on_hand(
                sku=variant.sku,
                on_hand=variant.inventory_quantity,
                reason=f"Shopify import of {record.handle}",
                actor=actor,
            )

    status: Literal["created", "updated", "unchanged"] = "unchanged"
    if created:
        status = "created"
    elif changed:
        status = "updated"
    log.info("product_imported", product_id=product.pk, handle=record.handle, status=status, version=version)
    return ImportOutcome(status=status, variants=len(record.variants), stock_changes=stock_changes, version=version)


def _sync_variants(product: Product, record: ProductRecord, *, currency: str) -> bool:
    existing = {variant.sku: variant for variant in product.variants.all()}
    changed = False

    for position, variant_record in enumerate(record.variants, start=1):
        fields = _variant_fields(variant_record, position=position, currency=currency)
        variant = existing.pop(variant_record.sku, None)
        if variant is None:
            ProductVariant.objects.create(product=product, sku=variant_record.sku, **fields)
            changed = True
            continue
        changed_fields = _apply_changes(variant, fields)
        if changed_fields:
            variant.save(update_fields=changed_fields)
            changed = True

    # The file describes the whole product: variants it no longer lists are removed.
    if existing:
        ProductVariant.objects.filter(pk__in=[variant.pk for variant in existing.values()]).delete()
        changed = True
    return changed


def _sync_images(product: Product, record: ProductRecord) -> bool:
    expected = [(image.src, image.position, image.alt_text) for image in sorted(record.images, key=lambda i: i.position)]
    stored = list(product.images.order_by("position", "id").values_list("src", "position", "alt_text"))
    if expected == stored:
        return False

    product.images.all().delete()
    ProductImage.objects.bulk_create(
        [ProductImage(product=product, src=src, position=position, alt_text=alt) for src, position, alt in expected]
    )
    return True

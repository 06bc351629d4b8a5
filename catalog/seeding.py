"""Generate a deterministic synthetic catalog for scale tests and load tests.

The same seed and product count always produce the same handles, SKUs, prices
and stock, so load-test runs and benchmarks are comparable across machines.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction

from catalog.models import Category, Product, ProductVariant
from catalog.services import category_get_or_create_path, product_event_payload
from commerce.outbox import outbox_write_many
from inventory.services import stock_receive_new_skus

CATEGORY_TREE = {
    "Apparel": ["Shirts", "Jackets", "Dresses", "Shoes"],
    "Home": ["Furniture", "Lighting", "Textiles", "Kitchen"],
    "Garden": ["Plants", "Tools", "Outdoor Furniture"],
    "Jewelry": ["Necklaces", "Earrings", "Bracelets"],
}
ADJECTIVES = ["Classic", "Modern", "Rustic", "Vintage", "Soft", "Bold", "Minimal", "Bright", "Dark", "Organic"]
MATERIALS = ["Cotton", "Wool", "Leather", "Oak", "Copper", "Silver", "Gold", "Linen", "Ceramic", "Bamboo"]
NOUNS = ["Shirt", "Jacket", "Lamp", "Table", "Chair", "Pot", "Necklace", "Bracelet", "Pillow", "Mug"]
SIZES = ["Small", "Medium", "Large"]
COLORS = ["Black", "White", "Blue", "Green", "Red"]


@dataclass
class SeedResult:
    created: int
    existing: int
    variants: int


def _leaf_categories() -> list[Category]:
    leaves = []
    for root, children in CATEGORY_TREE.items():
        for child in children:
            leaves.append(category_get_or_create_path(names=[root, child]))
    return leaves


def _build_product(rng: random.Random, number: int, category: Category, currency: str):
    handle = f"seed-product-{number:07d}"
    title = f"{rng.choice(ADJECTIVES)} {rng.choice(MATERIALS)} {rng.choice(NOUNS)} {number}"
    base_price = Decimal(rng.randrange(499, 49999)) / 100
    variant_count = rng.choice([1, 1, 2, 3])
    option_name, option_values = ("Size", SIZES) if rng.random() < 0.5 else ("Color", COLORS)

    variants = []
    for index in range(variant_count):
        options = {"option1_name": option_name, "option1_value": option_values[index]} if variant_count > 1 else {}
        variants.append(
            ProductVariant(
                sku=f"SEED-{number:07d}-{index + 1}",
                position=index + 1,
                price=base_price + index * Decimal("5.00"),
                currency=currency,
                weight_grams=rng.randrange(50, 5000),
                weight_unit="kg",
                **options,
            )
        )

    product = Product(
        handle=handle,
        title=title,
        body_html=f"<p>{title}, generated for load tests.</p>",
        body_text=f"{title}, generated for load tests.",
        vendor="Seed Supply Co",
        product_type=category.name,
        tags=[rng.choice(MATERIALS).lower(), rng.choice(COLORS).lower()],
        published=rng.random() > 0.02,
        category=category,
        currency=currency,
        price_min=min(variant.price for variant in variants),
        price_max=max(variant.price for variant in variants),
    )
    stock = {variant.sku: rng.choice([0, 1, 5, 10, 25, 100]) for variant in variants}
    return product, variants, stock


def seed_catalog(*, products: int, seed: int, currency: str, batch_size: int = 2000) -> SeedResult:
    """Create `products` synthetic products (skipping handles that already exist) with bulk inserts.

    Each batch is one transaction: its products, variants and stock land together.
    """
    leaves = _leaf_categories()
    result = SeedResult(created=0, existing=0, variants=0)

    for start in range(1, products + 1, batch_size):
        numbers = range(start, min(start + batch_size, products + 1))
        # One generator per product keeps product N identical whatever the batch size.
        built = [
            _build_product(random.Random(f"{seed}:{number}"), number, leaves[number % len(leaves)], currency)
            for number in numbers
        ]

        with transaction.atomic():
            handles = [product.handle for product, _, _ in built]
            existing = set(Product.objects.filter(handle__in=handles).values_list("handle", flat=True))
            fresh = [entry for entry in built if entry[0].handle not in existing]

            Product.objects.bulk_create([product for product, _, _ in fresh])
            variants = []
            stock: dict[str, int] = {}
            for product, product_variants, product_stock in fresh:
                for variant in product_variants:
                    variant.product = product
                variants.extend(product_variants)
                stock.update(product_stock)
            ProductVariant.objects.bulk_create(variants)
            outbox_write_many(
                [
                    {
                        "event_type": "product.created",
                        "aggregate_type": "product",
                        "aggregate_id": product.pk,
                        "aggregate_version": product.version,
                        "payload": product_event_payload(product),
                    }
                    for product, _, _ in fresh
                ]
            )
            stock_receive_new_skus(levels=stock, reason="synthetic catalog seed", actor="seed_catalog")

        result.created += len(fresh)
        result.existing += len(existing)
        result.variants += len(variants)
    return result

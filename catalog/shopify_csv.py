"""Parse Shopify's product CSV export into one record per product handle.

The format, as merchants export it: the first row of a handle carries the
product; later rows with the same handle add variants (they have an option
value, a SKU or a price) or only images. Parsing never touches the database;
catalog.importing applies the records.
"""
from __future__ import annotations

import csv
import hashlib
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

from bs4 import BeautifulSoup
from django.utils.text import slugify

REQUIRED_COLUMNS = {"Handle", "Title", "Variant Price"}
CATEGORY_COLUMNS = ("Google Shopping / Google Product Category", "Product Category")
SKU_MAX_LENGTH = 64


class RowError(Exception):
    """A row that cannot be used; it is reported as FILE:LINE: reason and its product skipped."""


@dataclass
class VariantRecord:
    line: int
    sku: str
    price: Decimal
    compare_at_price: Decimal | None
    weight_grams: int
    weight_unit: str
    options: list[tuple[str, str]]
    barcode: str
    image_src: str
    requires_shipping: bool
    taxable: bool
    inventory_quantity: int | None


@dataclass
class ImageRecord:
    src: str
    position: int
    alt_text: str


@dataclass
class ProductRecord:
    handle: str
    line: int
    title: str = ""
    body_html: str = ""
    body_text: str = ""
    vendor: str = ""
    product_type: str = ""
    tags: list[str] = field(default_factory=list)
    published: bool = True
    category_path: list[str] = field(default_factory=list)
    seo_title: str = ""
    seo_description: str = ""
    option_names: list[str] = field(default_factory=list)
    variants: list[VariantRecord] = field(default_factory=list)
    images: list[ImageRecord] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    error: str | None = None
    error_line: int | None = None


@dataclass
class ParseResult:
    products: list[ProductRecord]
    # "FILE:LINE: reason" for rows that belong to no product (a missing handle).
    orphan_errors: list[str]
    orphan_rows: int


def html_to_text(html: str) -> str:
    """Return the visible text of an HTML fragment with whitespace collapsed."""
    if not html.strip():
        return ""
    text = BeautifulSoup(html, "html.parser").get_text(" ")
    return re.sub(r"\s+", " ", text).strip()


def parse_tags(raw: str) -> list[str]:
    tags: list[str] = []
    for tag in raw.split(","):
        tag = tag.strip()
        if tag and tag not in tags:
            tags.append(tag)
    return tags


def parse_bool(raw: str, *, default: bool) -> bool:
    value = raw.strip().lower()
    if not value:
        return default
    return value in {"true", "1", "yes", "active"}


def parse_price(raw: str, column: str) -> Decimal:
    try:
        price = Decimal(raw.strip())
    except InvalidOperation:
        raise RowError(f"{column} {raw!r} is not a number") from None
    if not price.is_finite():
        raise RowError(f"{column} {raw!r} is not a number")
    if price < 0:
        raise RowError(f"{column} {raw!r} is negative")
    return price.quantize(Decimal("0.01"))


def parse_int(raw: str, column: str, *, allow_negative: bool = False) -> int:
    try:
        number = Decimal(raw.strip())
    except InvalidOperation:
        raise RowError(f"{column} {raw!r} is not a whole number") from None
    if not number.is_finite() or number != number.to_integral_value():
        raise RowError(f"{column} {raw!r} is not a whole number")
    if number < 0 and not allow_negative:
        raise RowError(f"{column} {raw!r} is negative")
    return int(number)


def parse_category_path(row: dict[str, str]) -> list[str]:
    """Build the category path: the Google product category, then the product Type as a leaf.

    Shopify exports the Google category either as a path ("Apparel & Accessories >
    Jewelry") or as a numeric taxonomy id; ids cannot be named without the
    taxonomy file, so they are ignored.
    """
    path: list[str] = []
    for column in CATEGORY_COLUMNS:
        raw = (row.get(column) or "").strip()
        if raw and not raw.isdigit():
            path = [part.strip() for part in raw.split(">") if part.strip()]
            break

    product_type = (row.get("Type") or "").strip()
    if product_type and (not path or path[-1].lower() != product_type.lower()):
        path.append(product_type)
    return path


def generated_sku(handle: str, option_values: list[str]) -> str:
    """Derive a stable SKU for a variant exported without one (Shopify allows that).

    Deterministic, so re-importing the same file finds the same variants.
    """
    values = [value for value in option_values if value and value != "Default Title"]
    sku = "-".join([handle, *[slugify(value) for value in values]])
    if len(sku) > SKU_MAX_LENGTH:
        digest = hashlib.sha1(sku.encode()).hexdigest()[:8]
        sku = f"{sku[: SKU_MAX_LENGTH - 9]}-{digest}"
    return sku


def _is_variant_row(row: dict[str, str]) -> bool:
    return any((row.get(column) or "").strip() for column in ("Option1 Value", "Variant SKU", "Variant Price"))


def _read_product_fields(product: ProductRecord, row: dict[str, str]) -> None:
    product.title = (row.get("Title") or "").strip()
    if not product.title:
        raise RowError("Title is missing on the product's first row")

    product.body_html = row.get("Body (HTML)") or ""
    product.body_text = html_to_text(product.body_html)
    product.vendor = (row.get("Vendor") or "").strip()
    product.product_type = (row.get("Type") or "").strip()
    product.tags = parse_tags(row.get("Tags") or "")
    product.published = parse_bool(row.get("Published") or "", default=True)
    # Newer exports carry Status (active, draft, archived) beside Published.
    status = (row.get("Status") or "").strip().lower()
    if status and status != "active":
        product.published = False
    product.category_path = parse_category_path(row)
    product.seo_title = (row.get("SEO Title") or "").strip()
    product.seo_description = (row.get("SEO Description") or "").strip()
    product.option_names = [(row.get(f"Option{n} Name") or "").strip() for n in (1, 2, 3)]


def _read_variant(product: ProductRecord, row: dict[str, str], line: int) -> VariantRecord:
    option_values = [(row.get(f"Option{n} Value") or "").strip() for n in (1, 2, 3)]
    # Shopify marks an option-less product with the pseudo option "Title: Default Title".
    options = [
        (name, value)
        for name, value in zip(product.option_names, option_values, strict=True)
        if name and value and value != "Default Title"
    ]

    raw_price = (row.get("Variant Price") or "").strip()
    if not raw_price:
        raise RowError("Variant Price is missing")
    price = parse_price(raw_price, "Variant Price")

    raw_compare = (row.get("Variant Compare At Price") or "").strip()
    compare_at_price = parse_price(raw_compare, "Variant Compare At Price") if raw_compare else None

    raw_grams = (row.get("Variant Grams") or "").strip()
    weight_grams = parse_int(raw_grams, "Variant Grams") if raw_grams else 0

    raw_quantity = (row.get("Variant Inventory Qty") or "").strip()
    quantity = parse_int(raw_quantity, "Variant Inventory Qty") if raw_quantity else None

    sku = (row.get("Variant SKU") or "").strip() or generated_sku(product.handle, option_values)
    if len(sku) > SKU_MAX_LENGTH:
        raise RowError(f"Variant SKU {sku!r} is longer than {SKU_MAX_LENGTH} characters")

    return VariantRecord(
        line=line,
        sku=sku,
        price=price,
        compare_at_price=compare_at_price,
        weight_grams=weight_grams,
        weight_unit=(row.get("Variant Weight Unit") or "").strip(),
        options=options,
        barcode=(row.get("Variant Barcode") or "").strip(),
        image_src=(row.get("Variant Image") or "").strip(),
        requires_shipping=parse_bool(row.get("Variant Requires Shipping") or "", default=True),
        taxable=parse_bool(row.get("Variant Taxable") or "", default=True),
        inventory_quantity=quantity,
    )


def _read_image(product: ProductRecord, row: dict[str, str]) -> None:
    src = (row.get("Image Src") or "").strip()
    if not src or any(image.src == src for image in product.images):
        return
    raw_position = (row.get("Image Position") or "").strip()
    position = parse_int(raw_position, "Image Position") if raw_position else len(product.images) + 1
    product.images.append(ImageRecord(src=src, position=position, alt_text=(row.get("Image Alt Text") or "").strip()))


def parse_file(path: Path) -> ParseResult:
    """Read one export file and group its rows by handle, recording the first error of each product.

    Raises OSError when the file cannot be read and ValueError when a required
    column is missing.
    """
    products: dict[str, ProductRecord] = {}
    orphan_errors: list[str] = []
    orphan_rows = 0

    # utf-8-sig: Shopify's exports and spreadsheet tools often add a byte-order mark.
    with path.open(newline="", encoding="utf-8-sig") as handle_file:
        reader = csv.DictReader(handle_file)
        missing = REQUIRED_COLUMNS - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{path}: missing required column(s): {', '.join(sorted(missing))}")

        next_line = 2  # line 1 is the header
        for row in reader:
            # A quoted body can span several physical lines; report where the record starts.
            line = next_line
            next_line = reader.line_num + 1

            handle = (row.get("Handle") or "").strip()
            if not handle:
                if any((value or "").strip() for value in row.values()):
                    orphan_errors.append(f"{path}:{line}: Handle is missing")
                    orphan_rows += 1
                continue

            product = products.get(handle)
            is_first_row = product is None
            if product is None:
                product = ProductRecord(handle=handle, line=line)
                products[handle] = product
            product.lines.append(line)
            if product.error is not None:
                continue

            try:
                if is_first_row:
                    _read_product_fields(product, row)
                if _is_variant_row(row):
                    product.variants.append(_read_variant(product, row, line))
                _read_image(product, row)
            except RowError as exc:
                product.error = str(exc)
                product.error_line = line

    for product in products.values():
        if product.error is None:
            _check_product(product)
    return ParseResult(products=list(products.values()), orphan_errors=orphan_errors, orphan_rows=orphan_rows)


def _check_product(product: ProductRecord) -> None:
    if not product.variants:
        product.error = "the product has no variant row (no price)"
        product.error_line = product.line
        return

    seen: dict[str, int] = {}
    for variant in product.variants:
        if variant.sku in seen:
            product.error = f"SKU {variant.sku!r} appears twice in this product (first at line {seen[variant.sku]})"
            product.error_line = variant.line
            return
        seen[variant.sku] = variant.line

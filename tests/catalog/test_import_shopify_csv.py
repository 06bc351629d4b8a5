"""The Shopify CSV importer, driven through its management command on small hand-written files."""
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from catalog.models import Category, Product, ProductImage, ProductVariant
from inventory.models import StockItem, StockMovement

pytestmark = pytest.mark.django_db

CSV_DIR = Path(__file__).parent / "csv"
BASIC = CSV_DIR / "basic.csv"
BROKEN = CSV_DIR / "broken.csv"


def run_import(*paths: Path) -> tuple[str, str]:
    stdout, stderr = StringIO(), StringIO()
    call_command("import_shopify_csv", *[str(path) for path in paths], stdout=stdout, stderr=stderr)
    return stdout.getvalue(), stderr.getvalue()


def test_import_first_row_carries_product():
    run_import(BASIC)

    shirt = Product.objects.get(handle="linen-shirt")
    assert shirt.title == "Linen Shirt"
    assert shirt.vendor == "Acme"
    assert shirt.published is True
    assert shirt.version == 1
    assert shirt.body_html == "<p>Breezy <strong>linen</strong>\nshirt.</p>"
    assert shirt.body_text == "Breezy linen shirt."
    assert shirt.tags == ["summer", "linen"]


def test_import_following_rows_add_variants_and_images():
    run_import(BASIC)

    shirt = Product.objects.get(handle="linen-shirt")
    variants = list(shirt.variants.order_by("position"))
    assert [variant.sku for variant in variants] == ["LIN-S-SAND", "LIN-M-SAND"]
    assert variants[0].options == [{"name": "Size", "value": "Small"}, {"name": "Color", "value": "Sand"}]
    # Option names come from the first row even when later rows leave them empty.
    assert variants[1].options == [{"name": "Size", "value": "Medium"}, {"name": "Color", "value": "Sand"}]
    assert variants[0].price == Decimal("39.90")
    assert variants[0].compare_at_price == Decimal("49.90")
    assert variants[1].compare_at_price is None
    assert variants[0].weight_grams == 200
    assert variants[0].image_src == "https://img.test/linen-s.jpg"
    assert shirt.price_min == Decimal("39.90")
    assert shirt.price_max == Decimal("41.90")

    images = list(shirt.images.values_list("src", "position", "alt_text"))
    assert images == [
        ("https://img.test/linen-1.jpg", 1, "Front"),
        ("https://img.test/linen-2.jpg", 2, "Back"),
        ("https://img.test/linen-3.jpg", 3, "Detail"),
    ]


def test_import_image_only_row_is_not_variant():
    run_import(BASIC)

    assert ProductVariant.objects.filter(product__handle="linen-shirt").count() == 2
    assert ProductVariant.objects.count() == 4


def test_import_default_title_has_no_options():
    run_import(BASIC)

    sock = ProductVariant.objects.get(product__handle="plain-sock")
    # Shopify exports no SKU here, so the importer derives a stable one from the handle.
    assert sock.sku == "plain-sock"
    assert sock.options == []
    assert sock.price == Decimal("4.50")


def test_import_unpublished_product():
    run_import(BASIC)

    assert Product.objects.get(handle="hidden-mug").published is False


def test_import_maps_google_category_and_type():
    run_import(BASIC)

    shirt = Product.objects.select_related("category").get(handle="linen-shirt")
    assert shirt.category.name == "Shirts"
    ancestors = [node.name for node in Category.objects.get_ancestors(shirt.category)]
    assert ancestors == ["Apparel & Accessories", "Clothing"]
    assert Product.objects.get(handle="hidden-mug").category.name == "Mugs"
    assert Product.objects.get(handle="plain-sock").category is None


def test_import_sets_stock_through_inventory():
    run_import(BASIC)

    stock = dict(StockItem.objects.values_list("sku", "on_hand"))
    assert stock == {"LIN-S-SAND": 5, "LIN-M-SAND": 3, "hidden-mug": 7, "plain-sock": 0}
    for sku, on_hand in stock.items():
        ledger = sum(StockMovement.objects.filter(sku=sku).values_list("quantity", flat=True))
        assert ledger == on_hand, sku


def test_import_summary_line():
    stdout, stderr = run_import(BASIC)

    assert stdout.strip() == (
        "products: 3 created, 0 updated, 0 unchanged; variants: 4; stock levels set: 3; skipped rows: 0 (0 products)"
    )
    assert stderr == ""


def test_reimport_same_file_changes_nothing():
    run_import(BASIC)
    before = {
        "products": list(Product.objects.order_by("id").values_list("id", "version", "updated_at")),
        "variants": list(ProductVariant.objects.order_by("id").values_list("id", "sku", "price")),
        "images": list(ProductImage.objects.order_by("id").values_list("id", "src")),
        "categories": Category.objects.count(),
        "movements": StockMovement.objects.count(),
    }

    stdout, _ = run_import(BASIC)

    after = {
        "products": list(Product.objects.order_by("id").values_list("id", "version", "updated_at")),
        "variants": list(ProductVariant.objects.order_by("id").values_list("id", "sku", "price")),
        "images": list(ProductImage.objects.order_by("id").values_list("id", "src")),
        "categories": Category.objects.count(),
        "movements": StockMovement.objects.count(),
    }
    assert after == before
    assert "0 created, 0 updated, 3 unchanged" in stdout


def test_reimport_edited_file_bumps_changed_only(tmp_path):
    run_import(BASIC)
    edited = tmp_path / "edited.csv"
    edited.write_text(BASIC.read_text().replace("41.90", "44.90"))

    stdout, _ = run_import(edited)

    assert "0 created, 1 updated, 2 unchanged" in stdout
    shirt = Product.objects.get(handle="linen-shirt")
    assert shirt.version == 2
    assert shirt.price_max == Decimal("44.90")
    assert Product.objects.get(handle="hidden-mug").version == 1
    assert Product.objects.get(handle="plain-sock").version == 1


def test_reimport_stock_change_keeps_version(tmp_path):
    run_import(BASIC)
    edited = tmp_path / "restock.csv"
    # Hidden Mug's quantity 7 becomes 9; nothing else in the catalog changes.
    edited.write_text(BASIC.read_text().replace(",300,7,12,", ",300,9,12,"))

    stdout, _ = run_import(edited)

    assert "3 unchanged" in stdout
    assert "stock levels set: 1" in stdout
    assert Product.objects.get(handle="hidden-mug").version == 1
    assert StockItem.objects.get(sku="hidden-mug").on_hand == 9
    assert list(StockMovement.objects.filter(sku="hidden-mug").values_list("quantity", flat=True).order_by("id")) == [
        7,
        2,
    ]


def test_reimport_removed_variant_is_deleted(tmp_path):
    run_import(BASIC)
    lines = BASIC.read_text().splitlines(keepends=True)
    # Line 4 of the file is the Medium variant row.
    edited = tmp_path / "fewer-variants.csv"
    edited.write_text("".join(lines[:3] + lines[4:]))

    run_import(edited)

    shirt = Product.objects.get(handle="linen-shirt")
    assert list(shirt.variants.values_list("sku", flat=True)) == ["LIN-S-SAND"]
    assert shirt.version == 2


def test_import_reports_unusable_rows_and_imports_rest():
    stdout, stderr = run_import(BROKEN)

    errors = stderr.strip().splitlines()
    assert errors == [
        f"{BROKEN}:3: Handle is missing",
        f"{BROKEN}:4: Variant Price 'abc' is not a number; skipped product 'bad-price'",
        f"{BROKEN}:6: Variant Inventory Qty '-3' is negative; skipped product 'negative-stock'",
        f"{BROKEN}:7: SKU 'HAT-1' already belongs to product 'good-hat'; skipped product 'sku-thief'",
    ]
    assert stdout.strip().endswith("skipped rows: 5 (3 products)")
    assert list(Product.objects.values_list("handle", flat=True)) == ["good-hat"]


def test_import_skipped_product_leaves_nothing():
    run_import(BROKEN)

    # The valid first row of negative-stock must not land without its second row.
    assert not ProductVariant.objects.filter(sku__startswith="NEG-").exists()
    assert not StockItem.objects.filter(sku__startswith="NEG-").exists()
    assert not StockMovement.objects.filter(sku__startswith="NEG-").exists()
    assert StockItem.objects.get(sku="HAT-1").on_hand == 2


def test_import_sku_owned_by_stored_product(tmp_path):
    run_import(BASIC)
    other = tmp_path / "other.csv"
    other.write_text(
        "Handle,Title,Option1 Name,Option1 Value,Variant SKU,Variant Price\n"
        "copycat,Copycat,Title,Default Title,LIN-S-SAND,5\n"
    )

    _, stderr = run_import(other)

    assert stderr.strip() == f"{other}:2: SKU 'LIN-S-SAND' already belongs to product 'linen-shirt'; skipped product 'copycat'"
    assert not Product.objects.filter(handle="copycat").exists()


def test_import_missing_file_fails():
    with pytest.raises(CommandError, match="no such file"):
        run_import(CSV_DIR / "absent.csv")


def test_import_missing_required_column_fails(tmp_path):
    headless = tmp_path / "no-price.csv"
    headless.write_text("Handle,Title\nthing,Thing\n")

    with pytest.raises(CommandError, match="missing required column"):
        run_import(headless)

"""Every catalog change writes one product event at the product's new version, in the same transaction."""
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from catalog.models import Product
from catalog.services import product_delete
from commerce.models import OutboxEvent

pytestmark = pytest.mark.django_db

BASIC = Path(__file__).parent / "csv" / "basic.csv"


def run_import(path: Path) -> None:
    call_command("import_shopify_csv", str(path), stdout=StringIO(), stderr=StringIO())


def product_events(handle: str) -> list[tuple[str, int]]:
    product_id = str(Product.objects.get(handle=handle).pk)
    rows = OutboxEvent.objects.filter(aggregate_type="product", aggregate_id=product_id).order_by("id")
    return list(rows.values_list("event_type", "aggregate_version"))


def test_import_writes_created_events():
    run_import(BASIC)

    assert product_events("linen-shirt") == [("product.created", 1)]
    assert OutboxEvent.objects.filter(event_type="product.created").count() == 3


def test_reimport_writes_no_events():
    run_import(BASIC)
    before = OutboxEvent.objects.count()

    run_import(BASIC)

    assert OutboxEvent.objects.count() == before


def test_edit_writes_updated_event(tmp_path):
    run_import(BASIC)
    edited = tmp_path / "edited.csv"
    edited.write_text(BASIC.read_text().replace("41.90", "44.90"))

    run_import(edited)

    assert product_events("linen-shirt") == [("product.created", 1), ("product.updated", 2)]
    event = OutboxEvent.objects.get(event_type="product.updated")
    assert event.payload["price_max"] == "44.90"


def test_unpublish_writes_unpublished_event(tmp_path):
    run_import(BASIC)
    edited = tmp_path / "unpublished.csv"
    # plain-sock is the last row and the only product with Published=true and no Type.
    edited.write_text(BASIC.read_text().replace("Plain Sock,,Acme,,,true", "Plain Sock,,Acme,,,false"))

    run_import(edited)

    assert product_events("plain-sock") == [("product.created", 1), ("product.unpublished", 2)]


def test_delete_writes_deleted_event():
    run_import(BASIC)
    product = Product.objects.get(handle="hidden-mug")

    product_delete(product_id=product.pk)

    event = OutboxEvent.objects.get(event_type="product.deleted")
    assert event.aggregate_id == str(product.pk)
    assert event.aggregate_version == 2
    assert not Product.objects.filter(pk=product.pk).exists()


def test_seed_writes_created_events():
    call_command("seed_catalog", "--products", "12", stdout=StringIO())

    assert OutboxEvent.objects.filter(event_type="product.created").count() == 12

"""check_search_drift and its Celery task: missing, stale and orphan documents, repair and exit status."""
from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command

from catalog.models import Product
from catalog.search.documents import tombstone
from catalog.search.drift import check_search_drift
from catalog.search.indexer import index_products, write_actions
from catalog.services import product_delete
from catalog.tasks import check_search_drift_task
from inventory import services as inventory
from tests.catalog.test_search_support import (  # noqa: F401 - fixtures are found by name
    change_price,
    closed_port_url,
    create_product,
    indexed,
    search_index,
    search_prefix,
    set_published,
)

pytestmark = pytest.mark.django_db


def run_check(*args: str) -> tuple[int, str]:
    """Run the command and return (exit status, output)."""
    output = io.StringIO()
    try:
        call_command("check_search_drift", *args, stdout=output)
    except CommandError as error:
        output.write(str(error))
        return error.returncode, output.getvalue()
    return 0, output.getvalue()


@pytest.fixture
def drifted(search_index):
    """An index that misses one product, has one at an old version and two that left the catalog."""
    current = create_product(title="Maple Board", prices=["35.00"])
    stale = create_product(title="Maple Bowl", prices=["20.00"])
    unpublished = create_product(title="Maple Spoon", prices=["6.00"])
    deleted = create_product(title="Maple Tray", prices=["28.00"])
    index_products([current.pk, stale.pk, unpublished.pk, deleted.pk])
    # Changes that no consumer applied:
    missing = create_product(title="Maple Cup", prices=["9.00"])
    change_price(stale, "22.00")
    set_published(unpublished, False)
    product_delete(product_id=deleted.pk)
    return {"current": current, "stale": stale, "unpublished": unpublished, "deleted": deleted, "missing": missing}


def test_drift_listed_in_json(drifted):
    status, output = run_check("--json")

    assert status == 1
    report = json.loads(output[: output.rindex("}") + 1])
    found = report["found"]
    assert found["products"] == 3
    assert found["documents"] == 4
    assert found["missing"] == [
        {"product_id": drifted["missing"].pk, "expected_version": 1, "indexed_version": None}
    ]
    assert found["stale"] == [{"product_id": drifted["stale"].pk, "expected_version": 2, "indexed_version": 1}]
    assert found["orphans"] == [
        {"product_id": drifted["unpublished"].pk, "expected_version": None, "indexed_version": 1},
        {"product_id": drifted["deleted"].pk, "expected_version": None, "indexed_version": 1},
    ]
    assert report["repair"] is None
    assert report["unrepaired_drift_count"] == 4


def test_drift_listed_as_text(drifted):
    status, output = run_check()

    assert status == 1
    assert "3 published product(s), 4 published document(s)" in output
    assert "1 missing, 1 stale, 2 orphan(s)" in output
    assert f"stale: product {drifted['stale'].pk}, PostgreSQL version 2, indexed version 1" in output
    assert "4 drifted document(s) remain. Run with --repair to fix it." in output


def test_repair_fixes_everything(drifted):
    status, output = run_check("--repair")

    assert status == 0, output
    assert "Repaired: 2 rewritten, 2 removed" in output
    assert "Remaining: 3 published product(s), 3 published document(s)" in output
    assert indexed(drifted["missing"].pk)["_version"] == 1
    assert indexed(drifted["stale"].pk)["_source"]["price_min"] == "22.00"
    assert indexed(drifted["unpublished"].pk)["_version"] == 2
    assert indexed(drifted["unpublished"].pk)["_source"]["published"] is False
    # The deleted product has no row: its tombstone is one above the indexed version, as its delete event was.
    assert indexed(drifted["deleted"].pk)["_version"] == 2
    assert indexed(drifted["deleted"].pk)["_source"]["published"] is False
    assert run_check()[0] == 0


def test_no_drift_exits_zero(search_index):
    product = create_product(title="Birch Box", prices=["11.00"])
    index_products([product.pk])

    status, output = run_check()

    assert status == 0
    assert "0 missing, 0 stale, 0 orphan(s), 0 with outdated availability" in output


def test_missing_alias_means_all_missing(search_prefix):
    product = create_product(title="Cedar Block", prices=["13.00"])

    status, output = run_check()
    repaired_status, _ = run_check("--repair")

    assert status == 1
    assert "does not exist; every published product is missing" in output
    assert repaired_status == 0
    assert indexed(product.pk)["_version"] == 1


def test_availability_change_is_not_drift(search_index):
    product = create_product(title="Pine Crate", prices=["17.00"])
    sku = product.variants.get().sku
    inventory.receive(sku=sku, quantity=2, reason="test stock", actor="tests")
    index_products([product.pk])
    inventory.adjust(sku=sku, delta=-2, reason="stock count", actor="tests")

    found = check_search_drift(repair=False).found
    status, output = run_check("--repair")

    assert found.drift_count == 0
    assert found.availability_stale == [product.pk]
    assert status == 0
    assert "1 availability refreshed" in output
    stored = indexed(product.pk)
    assert stored["_version"] == 1
    assert stored["_source"]["in_stock"] is False


def test_index_ahead_stays_unrepaired(search_index):
    product = create_product(title="Walnut Frame", prices=["44.00"])
    index_products([product.pk])
    # As after restoring an older database: the index contains a version PostgreSQL never reached.
    Product.objects.filter(pk=product.pk).update(version=1)
    write_actions([tombstone(product.pk, 5)])
    set_published(product, True)

    status, output = run_check("--repair")

    assert status == 1
    assert "rejected because the index holds a newer version" in output
    assert indexed(product.pk)["_version"] == 5


def test_opensearch_down_fails_command(search_index, settings):
    settings.OPENSEARCH_URL = closed_port_url()

    with pytest.raises(CommandError, match="Run the check again once OpenSearch is up"):
        call_command("check_search_drift", stdout=io.StringIO())


def test_task_repairs_drift(drifted):
    report = check_search_drift_task.run()

    assert report["found"] == {"missing": 1, "stale": 1, "orphans": 2, "availability_stale": 0, "drift_count": 4}
    assert report["repair"]["indexed"] == 2
    assert report["repair"]["removed"] == 2
    assert report["unrepaired_drift_count"] == 0
    assert check_search_drift(repair=False).found.drift_count == 0


def test_task_skips_when_opensearch_down(search_index, settings):
    settings.OPENSEARCH_URL = closed_port_url()

    report = check_search_drift_task.run()

    assert "unavailable" in report["skipped"]

"""audit_consistency finds each kind of broken invariant, and passes on a consistent shop."""
import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection

from orders.services import order_mark_paid
from tests.shopping import Shopper, stocked_variant

pytestmark = pytest.mark.django_db


# These read models are fed by processes the unit tests do not run.
SKIP = (
    "--skip",
    "outbox_drained",
    "--skip",
    "search_index_drift",
    "--skip",
    "consumer_lag",
    "--skip",
    "analytics_projection",
)


def audit(*args: str) -> tuple[int, dict]:
    stdout = StringIO()
    try:
        call_command("audit_consistency", "--json", *args, stdout=stdout)
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    results = {result["name"]: result for result in json.loads(stdout.getvalue())}
    return code, results


def place_order(quantity: int = 1) -> str:
    variant = stocked_variant(on_hand=5)
    shopper = Shopper()
    shopper.new_cart()
    shopper.add(variant.sku, quantity)
    return shopper.checkout().json()["id"]


def test_audit_passes_consistent_shop():
    place_order()

    code, results = audit(*SKIP)

    assert code == 0
    assert all(result["ok"] for result in results.values())


def test_audit_finds_counter_drift():
    place_order()
    with connection.cursor() as cursor:
        cursor.execute("UPDATE inventory_stockitem SET reserved = 0")

    code, results = audit(*SKIP)

    assert code == 1
    assert results["stock_counters"]["ok"] is False


def test_audit_finds_paid_order_without_capture():
    order_id = place_order()
    order_mark_paid(order_id=order_id, payment_id="manual", actor="tests")

    code, results = audit(*SKIP)

    assert code == 1
    assert results["one_capture_per_paid_order"]["examples"] == [{"order_id": order_id, "problem": "no capture"}]


def test_audit_finds_wrong_total():
    order_id = place_order()
    with connection.cursor() as cursor:
        cursor.execute("UPDATE orders_order SET total = total + 1, subtotal = subtotal + 1 WHERE id = %s", [order_id])

    code, results = audit(*SKIP)

    assert code == 1
    assert results["order_totals"]["examples"][0]["order_id"] == order_id


def test_audit_finds_undrained_outbox():
    place_order()

    code, results = audit("--skip", "search_index_drift", "--skip", "consumer_lag", "--skip", "analytics_projection")

    assert code == 1
    assert results["outbox_drained"]["violations"] >= 1

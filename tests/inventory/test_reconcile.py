"""reconcile_inventory: counters broken behind the services' back with raw SQL are found and repaired."""
import json
import os
import subprocess
import sys
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from inventory.models import StockItem, StockMovement
from inventory.services import reserve
from tests.factories import make_stock
from tests.inventory.support import assert_invariants
from tests.services import REPO

pytestmark = pytest.mark.django_db


def run_sql(sql: str, params: list) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def reconcile(*args: str) -> tuple[str, int]:
    """Run the command and return its output and exit status."""
    out = StringIO()
    try:
        call_command("reconcile_inventory", *args, stdout=out)
    except CommandError as exc:
        return out.getvalue(), exc.returncode
    return out.getvalue(), 0


@pytest.fixture
def broken():
    """Three SKUs with a reservation each, then raw SQL corrupts RES-DRIFT and HAND-DRIFT."""
    for sku in ["RES-DRIFT", "HAND-DRIFT", "UNTOUCHED"]:
        make_stock(sku, 10)
        reserve(lines=[(sku, 2)], reference=f"order:{sku}", ttl=timedelta(minutes=5))
    run_sql("UPDATE inventory_stockitem SET reserved = reserved + 3 WHERE sku = %s", ["RES-DRIFT"])
    run_sql("UPDATE inventory_stockitem SET on_hand = on_hand - 4 WHERE sku = %s", ["HAND-DRIFT"])


def counters(sku: str) -> tuple[int, int]:
    item = StockItem.objects.get(sku=sku)
    return item.on_hand, item.reserved


def test_clean_stock_exits_zero():
    make_stock("MUG", 3)

    output, status = reconcile()

    assert status == 0
    assert "0 SKU(s) drifted" in output


def test_finds_exactly_broken_skus(broken):
    output, status = reconcile("--json")
    report = json.loads(output)

    assert status == 1
    assert [entry["sku"] for entry in report["skus"]] == ["HAND-DRIFT", "RES-DRIFT"]
    assert report["drift_count"] == 2
    assert report["fixed_count"] == 0


def test_reports_both_values(broken):
    output, _status = reconcile("--json")
    entries = {entry["sku"]: entry for entry in json.loads(output)["skus"]}

    assert entries["RES-DRIFT"]["reserved"] == 5
    assert entries["RES-DRIFT"]["expected_reserved"] == 2
    assert entries["RES-DRIFT"]["on_hand"] == 10
    assert entries["RES-DRIFT"]["expected_on_hand"] == 10
    assert entries["HAND-DRIFT"]["on_hand"] == 6
    assert entries["HAND-DRIFT"]["expected_on_hand"] == 10
    assert entries["HAND-DRIFT"]["reserved"] == 2
    assert entries["HAND-DRIFT"]["expected_reserved"] == 2


def test_text_output_lists_drift(broken):
    output, _status = reconcile()

    assert "RES-DRIFT: on_hand 10 (ledger 10), reserved 5 (active reservations 2) - not fixed" in output
    assert "HAND-DRIFT: on_hand 6 (ledger 10), reserved 2 (active reservations 2) - not fixed" in output
    assert "UNTOUCHED" not in output


def test_check_changes_nothing(broken):
    movements = StockMovement.objects.count()

    reconcile()

    assert counters("RES-DRIFT") == (10, 5)
    assert counters("HAND-DRIFT") == (6, 2)
    assert StockMovement.objects.count() == movements


def test_fix_repairs_counters(broken):
    output, status = reconcile("--fix")

    assert status == 0
    assert "2 SKU(s) drifted, 2 fixed." in output
    assert counters("RES-DRIFT") == (10, 2)
    assert counters("HAND-DRIFT") == (10, 2)
    assert counters("UNTOUCHED") == (10, 2)
    assert_invariants()


def test_fix_writes_ledger_entries(broken):
    reconcile("--fix")

    entries = StockMovement.objects.filter(kind=StockMovement.Kind.RECONCILIATION).order_by("sku")
    assert list(entries.values_list("sku", "quantity")) == [("HAND-DRIFT", 0), ("RES-DRIFT", 0)]
    assert entries[0].reason == (
        "reconciliation: on_hand 6 -> 10 (ledger sum), reserved 2 -> 2 (active reservations)"
    )
    assert entries[1].reason == (
        "reconciliation: on_hand 10 -> 10 (ledger sum), reserved 5 -> 2 (active reservations)"
    )
    assert set(entries.values_list("actor", flat=True)) == {"reconcile_inventory"}


def test_fix_then_clean(broken):
    reconcile("--fix")

    output, status = reconcile("--json")

    assert status == 0
    assert json.loads(output)["drift_count"] == 0


def test_fix_recreates_missing_row():
    make_stock("LOST", 7)
    run_sql("DELETE FROM inventory_stockitem WHERE sku = %s", ["LOST"])

    report_output, report_status = reconcile("--json")
    fix_output, fix_status = reconcile("--fix")

    entry = json.loads(report_output)["skus"][0]
    assert report_status == 1
    assert entry["sku"] == "LOST"
    assert entry["on_hand"] is None
    assert "LOST: on_hand missing (ledger 7)" in fix_output
    assert fix_status == 0
    assert counters("LOST") == (7, 0)


def test_unfixable_drift_stays(broken):
    # The ledger now sums to 1 unit while 2 are reserved, so no counters satisfy the CHECK constraint.
    run_sql("UPDATE inventory_stockmovement SET quantity = 1 WHERE sku = %s", ["UNTOUCHED"])

    output, status = reconcile("--fix")

    assert status == 1
    assert "UNTOUCHED: on_hand 10 (ledger 1), reserved 2 (active reservations 2) - not fixable" in output
    assert counters("UNTOUCHED") == (10, 2)
    assert counters("RES-DRIFT") == (10, 2)


@pytest.mark.django_db(transaction=True)
def test_exit_status_from_shell(broken):
    # Point the child process at the test database, where this test's rows are committed.
    settings = connection.settings_dict
    database_url = (
        f"postgres://{settings['USER']}:{settings['PASSWORD']}@{settings['HOST']}:{settings['PORT']}/{settings['NAME']}"
    )

    result = subprocess.run(
        [sys.executable, "manage.py", "reconcile_inventory"],
        cwd=REPO,
        env={**os.environ, "DATABASE_URL": database_url, "LOG_FORMAT": "console"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 1
    assert "RES-DRIFT" in result.stdout
    assert "Run again with --fix" in result.stderr

"""reconcile_order_counts against the real orders database, outbox, Kafka offsets and projection."""
from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from analytics import tasks
from analytics.models import DailyOrderStats, OrderEventFact
from analytics.reconciliation import kafka_backlog, reconcile
from analytics.services import projection_forget_event
from orders.services import order_record_refund
from tests.analytics.conftest import (
    BOTH_DATABASES,
    pay,
    place_order,
    publish_outbox,
    run_analytics,
    stocked_product,
)
from tests.services import closed_port

pytestmark = [
    pytest.mark.django_db(transaction=True, databases=BOTH_DATABASES),
    pytest.mark.usefixtures("fast_consumers"),
]


def today() -> str:
    return datetime.now(UTC).date().isoformat()


def bucket(report: dict, state: str) -> dict:
    (found,) = [row for row in report["states"] if row["day"] == today() and row["state"] == state]
    return found


def differences(report: dict, classification: str) -> dict[str, dict]:
    return {item["order_id"]: item for item in report["differences"] if item["classification"] == classification}


def test_lag_then_zero_difference(kafka_producer, reconcile_command):
    variant = stocked_product(price="20.00")
    pay(place_order((variant, 1)))
    publish_outbox(kafka_producer)
    run_analytics()

    # The consumer is stopped: two paid orders reach Kafka, and a third is still in the outbox.
    consumed_later = [place_order((variant, 1)) for _ in range(2)]
    for order_id in consumed_later:
        pay(order_id)
    publish_outbox(kafka_producer)
    unrelayed = place_order((variant, 2))
    pay(unrelayed)

    status, output = reconcile_command("--json")
    report = json.loads(output)

    assert status == 0
    assert differences(report, "unexplained") == {}
    lag = differences(report, "lag")
    assert set(lag) == {*consumed_later, unrelayed}
    assert {lag[order_id]["reason"] for order_id in consumed_later} == {"not_consumed"}
    assert lag[unrelayed]["reason"] == "not_relayed"
    assert lag[unrelayed]["missing_versions"] == [1, 2]
    paid = bucket(report, "paid")
    assert paid["orders"] == {"count": 4, "total": "100.00", "refunded": "0.00"}
    assert paid["projection"] == {"count": 1, "total": "20.00", "refunded": "0.00"}
    assert paid["lag"] == {"count": -3, "total": "-80.00", "refunded": "0.00"}
    assert paid["unexplained"] == {"count": 0, "total": "0.00", "refunded": "0.00"}
    assert report["summary"]["unconsumed_messages"] == 4
    assert report["summary"]["unrelayed_events"] == 2
    (committed,) = report["committed"]
    assert committed["orders"] == {"count": 4, "revenue": "100.00"}
    assert committed["projection"] == {"count": 1, "revenue": "20.00"}

    publish_outbox(kafka_producer)
    run_analytics()
    status, output = reconcile_command("--json")
    report = json.loads(output)

    assert status == 0
    assert report["differences"] == []
    assert report["aggregate_drift"] == []
    paid = bucket(report, "paid")
    assert paid["orders"] == paid["projection"] == {"count": 4, "total": "100.00", "refunded": "0.00"}
    assert report["summary"]["unconsumed_messages"] == 0
    (committed,) = report["committed"]
    assert committed["orders"] == committed["projection"] == {"count": 4, "revenue": "100.00"}


def test_dropped_event_unexplained(kafka_producer, reconcile_command):
    variant = stocked_product(price="15.00")
    orders = [place_order((variant, 1)) for _ in range(3)]
    for order_id in orders:
        pay(order_id)
    publish_outbox(kafka_producer)
    run_analytics()
    assert reconcile_command()[0] == 0
    dropped = orders[1]
    paid_event = OrderEventFact.objects.get(order_id=dropped, event_type="order.paid")

    # The projection loses the effect of one order.paid, while the committed offsets are past it.
    assert projection_forget_event(event_id=paid_event.event_id)
    status, output = reconcile_command()

    assert status == 1
    assert "Unexplained: 1 order(s)" in output
    assert f"{dropped}  {today()}  missing_events: Versions [2] are neither in the outbox" in output
    assert "Lag: 0 order(s)" in output

    report = reconcile(start=datetime.now(UTC).date(), end=datetime.now(UTC).date())
    (difference,) = report.unexplained
    assert str(difference.order_id) == dropped
    assert (difference.orders_state, difference.projection_state) == ("paid", "pending_payment")
    assert report.drift == []
    paid = report.buckets[(datetime.now(UTC).date(), "paid", "USD")]
    assert (paid.orders.count, paid.projection.count, paid.unexplained.count, paid.lag.count) == (3, 2, -1, 0)
    pending = report.buckets[(datetime.now(UTC).date(), "pending_payment", "USD")]
    assert (pending.orders.count, pending.projection.count, pending.unexplained.count) == (0, 1, 1)


def test_fact_deleted_without_sums_shows_drift(kafka_producer, reconcile_command):
    variant = stocked_product(price="15.00")
    order_id = place_order((variant, 1))
    pay(order_id)
    publish_outbox(kafka_producer)
    run_analytics()

    # A hand-made delete: the fact goes, the daily sums keep counting it.
    OrderEventFact.objects.filter(order_id=order_id, event_type="order.paid").delete()
    status, output = reconcile_command("--json")
    report = json.loads(output)

    assert status == 1
    assert set(differences(report, "unexplained")) == {order_id}
    drift = {(item["table"], item["measure"]): item for item in report["aggregate_drift"]}
    assert drift[("daily_order_stats", "orders_paid")]["stored"] == 1
    assert drift[("daily_order_stats", "orders_paid")]["from_facts"] == 0
    assert drift[("daily_order_stats", "revenue")] == {
        "table": "daily_order_stats",
        "day": today(),
        "currency": "USD",
        "category": None,
        "sku": None,
        "measure": "revenue",
        "stored": "15.00",
        "from_facts": 0,
    }
    assert ("daily_sku_stats", "units_sold") in drift


def test_doubled_sum_shows_drift(kafka_producer, reconcile_command):
    variant = stocked_product(price="15.00")
    pay(place_order((variant, 1)))
    publish_outbox(kafka_producer)
    run_analytics()

    DailyOrderStats.objects.update(orders_paid=2, revenue=Decimal("30.00"))
    status, output = reconcile_command()

    assert status == 1
    assert "Unexplained: 0 order(s)" in output
    assert f"daily_order_stats {today()} USD orders_paid: stored 2, facts 1" in output
    assert f"daily_order_stats {today()} USD revenue: stored 30.00, facts 15.00" in output


def test_event_for_unknown_order_unexplained(kafka_producer, make_envelope, reconcile_command):
    ghost = str(uuid.uuid4())
    kafka_producer.send_envelope(
        make_envelope(
            "order.placed",
            aggregate_id=ghost,
            payload={
                "order_id": ghost,
                "state": "pending_payment",
                "currency": "USD",
                "total": "5.00",
                "lines": [{"sku": "SKU-GHOST", "quantity": 1, "unit_price": "5.00"}],
                "payment_due_at": datetime.now(UTC).isoformat(),
            },
        )
    )
    run_analytics()

    status, output = reconcile_command("--json")
    report = json.loads(output)

    assert status == 1
    assert differences(report, "unexplained")[ghost]["reason"] == "not_in_orders"
    assert bucket(report, "pending_payment")["unexplained"] == {"count": 1, "total": "5.00", "refunded": "0.00"}


def test_refunds_compared_to_cent(kafka_producer, reconcile_command):
    variant = stocked_product(price="33.33")
    order_id = place_order((variant, 3))
    pay(order_id)
    order_record_refund(order_id=order_id, amount=Decimal("0.01"), refund_id=str(uuid.uuid4()), actor="tests")
    publish_outbox(kafka_producer)
    run_analytics()

    status, output = reconcile_command("--json")
    report = json.loads(output)

    assert status == 0
    assert report["differences"] == []
    row = bucket(report, "partially_refunded")
    assert row["orders"] == row["projection"] == {"count": 1, "total": "99.99", "refunded": "0.01"}
    (committed,) = report["committed"]
    assert committed["orders"] == committed["projection"] == {"count": 1, "revenue": "99.98"}


def test_range_outside_orders_empty(reconcile_command):
    status, output = reconcile_command("--from", "2001-01-01", "--to", "2001-01-31")

    assert status == 0
    assert "(no orders)" in output


def test_reversed_range_rejected():
    with pytest.raises(CommandError, match="--from 2001-02-01 is after --to 2001-01-31"):
        call_command("reconcile_order_counts", "--from", "2001-02-01", "--to", "2001-01-31")


def test_kafka_down_exits_2(reconcile_command, monkeypatch):
    monkeypatch.setattr(kafka_backlog, "REQUEST_TIMEOUT_SECONDS", 2.0)

    # A context manager, so the fixtures' teardown deletes the test topics on the real broker.
    with override_settings(KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{closed_port()}"):
        status, output = reconcile_command()

    assert status == 2
    assert output == ""


def test_task_logs_result(kafka_producer, caplog):
    variant = stocked_product(price="8.00")
    order_id = place_order((variant, 1))
    pay(order_id)
    publish_outbox(kafka_producer)
    run_analytics()

    clean = tasks.reconcile_order_counts()
    OrderEventFact.objects.filter(order_id=order_id, event_type="order.paid").delete()
    caplog.clear()
    dirty = tasks.reconcile_order_counts()

    assert clean["unexplained_orders"] == 0
    assert dirty["unexplained_orders"] == 1
    (record,) = [
        record for record in caplog.records
        if isinstance(record.msg, dict) and record.msg.get("event") == "analytics_reconciliation_unexplained"
    ]
    assert record.levelname == "ERROR"
    assert record.msg["order_ids"] == [order_id]
    assert record.msg["reasons"] == ["missing_events"]
    assert record.msg["start"] == (datetime.now(UTC).date() - timedelta(days=1)).isoformat()

"""Rebuilding the projection from Kafka: an empty analytics database replayed from the start gives the same numbers."""
from __future__ import annotations

import io
import uuid
from decimal import Decimal

import pytest
from django.core.management import call_command

from analytics.models import AppliedEvent, DailyOrderStats, OrderEventFact
from orders.services import order_cancel, order_expire, order_fulfil, order_record_refund
from tests.analytics.conftest import (
    BOTH_DATABASES,
    pay,
    place_order,
    projection_numbers,
    publish_outbox,
    run_analytics,
    stocked_product,
)

pytestmark = [
    pytest.mark.django_db(transaction=True, databases=BOTH_DATABASES),
    pytest.mark.usefixtures("fast_consumers"),
]

FROM_THE_START = "1970-01-01T00:00:00Z"


def replay_from_start() -> str:
    output = io.StringIO()
    call_command("replay", "analytics", "--from-timestamp", FROM_THE_START, stdout=output)
    return output.getvalue().strip()


def test_replay_into_empty_database_matches(kafka_producer, reconcile_command):
    mug = stocked_product(price="12.50", category=("Kitchen", "Mugs"))
    lamp = stocked_product(price="39.99", category=("Home", "Lighting"))
    orders = [place_order((mug, 1 + index % 3), (lamp, 1)) for index in range(8)]
    for order_id in orders[:5]:
        pay(order_id)
    order_fulfil(order_id=orders[0], actor="tests")
    order_record_refund(order_id=orders[1], amount=Decimal("0.01"), refund_id=str(uuid.uuid4()), actor="tests")
    order_record_refund(order_id=orders[2], amount=Decimal("17.33"), refund_id=str(uuid.uuid4()), actor="tests")
    order_record_refund(order_id=orders[2], amount=Decimal("35.16"), refund_id=str(uuid.uuid4()), actor="tests")
    order_cancel(order_id=orders[5], actor="tests", reason="duplicate order")
    order_expire(order_id=orders[6])
    published = publish_outbox(kafka_producer, as_v1=orders[:4])
    run_analytics()
    live = projection_numbers()
    assert reconcile_command("--json")[0] == 0

    # The rebuild procedure: empty the analytics database, then replay the order topic from its first message.
    call_command("flush", database="analytics", interactive=False, verbosity=0)
    assert not DailyOrderStats.objects.exists()
    assert not AppliedEvent.objects.exists()
    first = replay_from_start()
    rebuilt = projection_numbers()
    second = replay_from_start()

    assert first == f"analytics replay: {len(published)} message(s): {len(published)} applied"
    assert rebuilt == live
    assert second == f"analytics replay: {len(published)} message(s): {len(published)} duplicate"
    assert projection_numbers() == live
    assert OrderEventFact.objects.count() == len(published)
    assert reconcile_command("--json")[0] == 0


def test_replay_over_live_projection_changes_nothing(kafka_producer):
    variant = stocked_product(price="19.90")
    for _ in range(3):
        pay(place_order((variant, 2)))
    published = publish_outbox(kafka_producer)
    run_analytics()
    live = projection_numbers()

    output = replay_from_start()

    assert output == f"analytics replay: {len(published)} message(s): {len(published)} duplicate"
    assert projection_numbers() == live

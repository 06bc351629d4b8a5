"""The analytics consumer against the real broker and both PostgreSQL databases."""
from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from confluent_kafka import Consumer, TopicPartition
from django.conf import settings
from django.db import connections
from django.test.utils import CaptureQueriesContext

from analytics.models import AppliedEvent, DailyOrderStats, DailySkuStats, OrderEventFact, OrderLineFact
from analytics.reconciliation.drift import aggregate_drift
from cdc.envelope import Envelope, dead_letter_topic, topic_for
from commerce.models import OutboxEvent
from orders.services import order_cancel, order_expire, order_record_refund
from tests.analytics.conftest import (
    BOTH_DATABASES,
    order_totals,
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


def test_order_lifecycle_projected(kafka_producer):
    mug = stocked_product(price="12.50", category=("Kitchen", "Mugs"))
    lamp = stocked_product(price="40.00", category=("Home", "Lighting"))
    refunded = place_order((mug, 2), (lamp, 1))
    cancelled = place_order((mug, 1))
    expired = place_order((lamp, 1))
    partly_refunded = place_order((lamp, 2))
    pay(refunded)
    pay(partly_refunded)
    order_cancel(order_id=cancelled, actor="tests", reason="changed mind")
    order_expire(order_id=expired)
    order_record_refund(order_id=refunded, amount=Decimal("65.00"), refund_id=str(uuid.uuid4()), actor="tests")
    order_record_refund(order_id=partly_refunded, amount=Decimal("10.01"), refund_id=str(uuid.uuid4()), actor="tests")
    published = publish_outbox(kafka_producer)

    output = run_analytics()

    assert output == f"analytics: {len(published)} message(s): {len(published)} applied"
    today = datetime.now(UTC).date()
    stats = DailyOrderStats.objects.get(day=today, currency="USD")
    assert (stats.orders_placed, stats.orders_paid, stats.orders_cancelled, stats.orders_expired) == (4, 2, 1, 1)
    assert stats.orders_refunded == 1
    assert stats.revenue == Decimal("145.00")
    assert stats.refunds == Decimal("75.01")

    mugs = DailySkuStats.objects.get(day=today, sku=mug.sku)
    assert mugs.category == "kitchen-mugs", "checkout writes order.placed v2 with the category slug"
    assert (mugs.orders_placed, mugs.orders_paid, mugs.orders_cancelled, mugs.units_sold) == (2, 1, 1, 2)
    assert mugs.revenue == Decimal("25.00")
    # 65.00 refunded on an order of 25.00 (mugs) + 40.00 (lamp) splits 25.00 / 40.00.
    assert mugs.refunds == Decimal("25.00")
    lamps = DailySkuStats.objects.get(day=today, sku=lamp.sku)
    assert lamps.revenue == Decimal("120.00")
    assert lamps.refunds == Decimal("50.01")
    assert (lamps.orders_placed, lamps.orders_paid, lamps.orders_expired, lamps.orders_refunded) == (3, 2, 1, 1)

    assert OrderEventFact.objects.count() == len(published)
    assert OrderLineFact.objects.count() == 5
    assert aggregate_drift(today, today) == []


def test_redelivered_events_counted_once(kafka_producer, kafka_topic_prefix):
    variant = stocked_product(price="30.00")
    for _ in range(3):
        pay(place_order((variant, 1)))
    published = publish_outbox(kafka_producer)
    run_analytics()
    before = projection_numbers()

    # A crash after the projection committed but before the offsets did: the group reads everything again.
    _rewind_group(f"{kafka_topic_prefix}.analytics", topic_for("order"))
    output = run_analytics()

    assert output == f"analytics: {len(published)} message(s): {len(published)} duplicate"
    assert projection_numbers() == before
    assert order_totals()["orders_paid"] == 3


def test_second_event_id_for_version_ignored(kafka_producer):
    variant = stocked_product(price="30.00")
    order_id = place_order((variant, 1))
    pay(order_id)
    published = publish_outbox(kafka_producer)
    paid = next(envelope for envelope in published if envelope.type == "order.paid")
    # The same order version under a new event id, as a writer that bypassed the outbox's unique key would produce.
    kafka_producer.send_envelope(Envelope(**{**paid.__dict__, "event_id": str(uuid.uuid4())}))

    output = run_analytics()

    assert output == "analytics: 3 message(s): 2 applied, 1 duplicate"
    assert order_totals()["orders_paid"] == 1
    assert AppliedEvent.objects.count() == 2


def test_event_before_placed_dead_lettered(kafka_producer, kafka_inspector):
    variant = stocked_product(price="30.00")
    order_id = place_order((variant, 1))
    pay(order_id)
    # Only order.paid reaches Kafka: order.placed is missing, as if it had been dead-lettered.
    paid = OutboxEvent.objects.get(aggregate_id=order_id, event_type="order.paid")
    kafka_producer.send_envelope(Envelope.from_outbox(paid))

    output = run_analytics()

    assert output == "analytics: 1 message(s): 1 dead_lettered"
    dead_letters = kafka_inspector.read_topic(dead_letter_topic(topic_for("order")), expected=1)
    assert len(dead_letters) == 1
    message = dict(dead_letters[0].headers())["dlq.error.message"]
    assert b"arrived before the order's order.placed was applied" in message
    assert not OrderEventFact.objects.exists()
    assert not AppliedEvent.objects.exists()


def test_unsupported_version_dead_lettered(kafka_producer, kafka_inspector, make_envelope):
    order_id = str(uuid.uuid4())
    envelope = make_envelope(
        "order.cancelled",
        aggregate_id=order_id,
        version=7,
        payload={"order_id": order_id, "state": "cancelled", "previous_state": "pending_payment", "total": "1.00",
                 "refunded_total": "0.00", "currency": "USD"},
    )
    kafka_producer.send_envelope(envelope)

    output = run_analytics()

    assert output == "analytics: 1 message(s): 1 dead_lettered"
    dead_letters = kafka_inspector.read_topic(dead_letter_topic(topic_for("order")), expected=1)
    assert b"does not support this event version" in dict(dead_letters[0].headers())["dlq.error.message"]
    assert not AppliedEvent.objects.exists()


def test_placed_v2_counts_match_v1(kafka_producer):
    mug = stocked_product(price="12.50", category=("Kitchen", "Mugs"))
    plain = stocked_product(price="3.00")
    orders = [place_order((mug, 2), (plain, 1)) for _ in range(4)]
    for order_id in orders[::2]:
        pay(order_id)
    # The first two orders are published as v1, the last two as v2: the version boundary lies between them.
    published = publish_outbox(kafka_producer, as_v1=orders[:2])
    assert sorted(envelope.version for envelope in published if envelope.type == "order.placed") == [1, 1, 2, 2]

    run_analytics()

    today = datetime.now(UTC).date()
    stats = DailyOrderStats.objects.get(day=today)
    assert (stats.orders_placed, stats.orders_paid, stats.revenue) == (4, 2, Decimal("56.00"))
    mug_rows = {row.category: row for row in DailySkuStats.objects.filter(sku=mug.sku)}
    assert set(mug_rows) == {"", "kitchen-mugs"}
    # Per SKU, the v1 and v2 rows add up to the counts an all-v1 stream gives; only the category differs.
    assert sum(row.orders_placed for row in mug_rows.values()) == 4
    assert sum(row.orders_paid for row in mug_rows.values()) == 2
    assert sum(row.units_sold for row in mug_rows.values()) == 4
    assert sum(row.revenue for row in mug_rows.values()) == Decimal("50.00")
    plain_rows = DailySkuStats.objects.filter(sku=plain.sku)
    assert {row.category for row in plain_rows} == {""}, "v2 sends null for a product without a category"
    assert sum(row.orders_placed for row in plain_rows) == 4
    assert aggregate_drift(today, today) == []


def test_projection_writes_only_analytics_database(kafka_producer):
    variant = stocked_product(price="5.00")
    pay(place_order((variant, 1)))
    publish_outbox(kafka_producer)
    default_connection = connections["default"]

    with CaptureQueriesContext(default_connection) as default_queries:
        run_analytics()

    assert OrderEventFact.objects.count() == 2
    assert [query["sql"] for query in default_queries.captured_queries] == []


def _rewind_group(group_id: str, topic: str) -> None:
    client = Consumer({"bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS, "group.id": group_id})
    try:
        partitions = client.list_topics(topic, timeout=10).topics[topic].partitions
        client.commit(offsets=[TopicPartition(topic, partition, 0) for partition in partitions], asynchronous=False)
    finally:
        client.close()


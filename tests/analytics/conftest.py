"""Fixtures for the analytics tests: the Kafka fixtures of tests/cdc, a stand-in relay and shop helpers.

Events reach Kafka through `publish_outbox`, which does what the relay does
(produce each order event keyed by order id, then delete its outbox row), so
these tests do not depend on the relay process.
"""
from __future__ import annotations

import io
import uuid
from collections.abc import Callable, Iterable
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError

from analytics.models import ORDER_MEASURES, DailyOrderStats, DailySkuStats, OrderEventFact, OrderLineFact
from catalog.models import ProductVariant
from cdc.envelope import Envelope
from cdc.event_schemas import validate_payload
from commerce.models import OutboxEvent
from inventory import services as inventory
from orders.services import order_mark_paid
from tests.cdc.conftest import (  # noqa: F401  (pytest finds fixtures by name in this module)
    KafkaTestProducer,
    fast_consumers,
    kafka_inspector,
    kafka_producer,
    kafka_topic_prefix,
    make_envelope,
)
from tests.factories import ProductFactory, make_category
from tests.shopping import Shopper

BOTH_DATABASES = ["default", "analytics"]


def run_analytics(*, idle_timeout: float = 2) -> str:
    """Run `run_consumer analytics` in this process until it is idle for `idle_timeout` seconds; return its output line."""
    output = io.StringIO()
    call_command("run_consumer", "analytics", "--idle-timeout", str(idle_timeout), stdout=output)
    return output.getvalue().strip()


def publish_outbox(producer: KafkaTestProducer, *, as_v1: Iterable[str] = ()) -> list[Envelope]:
    """Publish every order event in the outbox in id order and delete the rows, as the relay does.

    Checkout writes order.placed v2; the orders in `as_v1` are published as
    v1 instead, the way an older producer wrote them, to test both side by side.
    """
    downgrade = {str(order_id) for order_id in as_v1}
    published = []
    for row in OutboxEvent.objects.filter(aggregate_type="order").order_by("id"):
        envelope = Envelope.from_outbox(row)
        if envelope.type == "order.placed" and envelope.aggregate_id in downgrade:
            envelope = placed_as_v1(envelope)
        producer.send_envelope(envelope)
        row.delete()
        published.append(envelope)
    return published


def placed_as_v1(envelope: Envelope) -> Envelope:
    """Rewrite an order.placed v2 envelope as v1, which carries no category per line."""
    payload = {
        **envelope.payload,
        "lines": [{key: value for key, value in line.items() if key != "category"} for line in envelope.payload["lines"]],
    }
    validate_payload("order.placed", 1, payload)
    return Envelope(**{**envelope.__dict__, "version": 1, "payload": payload})


def stocked_product(*, price: str, category: tuple[str, ...] = (), on_hand: int = 50) -> ProductVariant:
    """Create a published single-variant product in the category path `category` with `on_hand` units."""
    kwargs = {"prices": [price]}
    if category:
        kwargs["category"] = make_category(*category)
    variant = ProductFactory(**kwargs).variants.get()
    inventory.receive(sku=variant.sku, quantity=on_hand, reason="test stock", actor="tests")
    return variant


def place_order(*lines: tuple[ProductVariant, int]) -> str:
    """Check out a new guest cart with these (variant, quantity) lines through the API; return the order id."""
    shopper = Shopper()
    shopper.new_cart()
    for variant, quantity in lines:
        response = shopper.add(variant.sku, quantity)
        assert response.status_code == 201, response.content
    response = shopper.checkout()
    assert response.status_code == 201, response.content
    return response.json()["id"]


def pay(order_id: str) -> None:
    order = order_mark_paid(order_id=order_id, payment_id=f"pay_{uuid.uuid4().hex[:12]}", actor="tests")
    assert order.state == "paid"


def projection_numbers() -> dict:
    """Return every row of the projection's facts and daily tables, without surrogate ids, for exact comparison."""
    return {
        "orders": sorted(
            DailyOrderStats.objects.values_list(
                "day", "currency", "orders_placed", "orders_paid", "orders_cancelled", "orders_expired",
                "orders_refunded", "revenue", "refunds",
            )
        ),
        "skus": sorted(
            DailySkuStats.objects.values_list(
                "day", "currency", "category", "sku", "orders_placed", "orders_paid", "orders_cancelled",
                "orders_expired", "orders_refunded", "units_sold", "revenue", "refunds",
            )
        ),
        "facts": sorted(
            OrderEventFact.objects.values_list(
                "event_id", "order_id", "aggregate_version", "event_type", "state", "total", "refunded_total", "amount"
            )
        ),
        "lines": sorted(OrderLineFact.objects.values_list("order_id", "line_number", "sku", "category", "quantity", "line_total")),
    }


def order_totals() -> dict[str, int | Decimal]:
    """Return all DailyOrderStats measures summed over every day and currency."""
    totals: dict[str, int | Decimal] = {}
    for row in DailyOrderStats.objects.all():
        for measure in ORDER_MEASURES:
            totals[measure] = totals.get(measure, 0) + getattr(row, measure)
    return totals


@pytest.fixture
def staff_user():
    return get_user_model().objects.create_user(username="analyst", password="analyst-password", is_staff=True)


@pytest.fixture
def reconcile_command() -> Callable[..., tuple[int, str]]:
    """Return a runner of reconcile_order_counts that returns (exit status, stdout)."""

    def run(*args: str) -> tuple[int, str]:
        output = io.StringIO()
        try:
            call_command("reconcile_order_counts", *args, stdout=output)
        except CommandError as error:
            return error.returncode, output.getvalue()
        return 0, output.getvalue()

    return run

"""Event parsing for every supported version, refund splitting and the committed-order definition, without services."""
from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal

import pytest

from analytics.contributions import OrderStatsKey, SkuStatsKey, order_contribution, prorate, sku_contributions
from analytics.definitions import COMMITTED_STATES, committed_revenue, is_committed
from analytics.events import PlacedLine, UnusableEvent, parse_order_event
from cdc.envelope import Envelope
from cdc.event_schemas import load_schemas
from orders.models import OrderState
from orders.services import PAID_STATES

ORDER_ID = "0b0e8f36-7f4b-4a6b-9f43-6f4f1d6f5e11"


def envelope(event_type: str, payload: dict, *, version: int = 1, aggregate_version: int = 1, occurred_at: str | None = None) -> Envelope:
    return Envelope(
        event_id=str(uuid.uuid4()),
        type=event_type,
        version=version,
        aggregate_type="order",
        aggregate_id=ORDER_ID,
        aggregate_version=aggregate_version,
        occurred_at=occurred_at or "2025-03-01T23:59:59.999999+00:00",
        payload=payload,
    )


def placed_payload(*, with_category: bool) -> dict:
    lines = [
        {"sku": "MUG-1", "quantity": 2, "unit_price": "12.50"},
        {"sku": "TEA-1", "quantity": 1, "unit_price": "5.00"},
    ]
    if with_category:
        lines[0]["category"] = "kitchen-mugs"
        lines[1]["category"] = None
    return {
        "order_id": ORDER_ID,
        "state": "pending_payment",
        "currency": "USD",
        "total": "30.00",
        "lines": lines,
        "payment_due_at": "2025-03-02T00:15:00+00:00",
    }


def transition_payload(state: str, **extra) -> dict:
    return {
        "order_id": ORDER_ID,
        "state": state,
        "previous_state": "pending_payment",
        "total": "30.00",
        "refunded_total": "0.00",
        "currency": "USD",
        **extra,
    }


def test_placed_v1_and_v2_agree_except_category():
    v1 = parse_order_event(envelope("order.placed", placed_payload(with_category=False)))
    v2 = parse_order_event(envelope("order.placed", placed_payload(with_category=True), version=2))

    strip = {"event_id", "schema_version", "lines"}
    assert {key: value for key, value in v1.__dict__.items() if key not in strip} == {
        key: value for key, value in v2.__dict__.items() if key not in strip
    }
    assert [(line.sku, line.quantity, line.line_total) for line in v1.lines] == [
        (line.sku, line.quantity, line.line_total) for line in v2.lines
    ]
    assert [line.category for line in v1.lines] == ["", ""]
    assert [line.category for line in v2.lines] == ["kitchen-mugs", ""]
    assert v1.day == date(2025, 3, 1)


def test_paid_amount_is_total():
    event = parse_order_event(
        envelope("order.paid", transition_payload("paid", payment_id="pay_1"), aggregate_version=2)
    )

    assert (event.state, event.amount, event.refunded_total) == ("paid", Decimal("30.00"), Decimal("0.00"))


def test_refund_amount_taken_from_payload():
    payload = transition_payload("partially_refunded", refund_id=str(uuid.uuid4()), amount="7.77", refunded_total="7.77")
    payload["previous_state"] = "paid"

    event = parse_order_event(envelope("order.refunded", payload, aggregate_version=3))

    assert (event.amount, event.refunded_total) == (Decimal("7.77"), Decimal("7.77"))


@pytest.mark.parametrize(
    ("event_type", "payload", "version", "message"),
    [
        ("order.placed", placed_payload(with_category=False), 3, "does not support this event version"),
        ("order.shipped", transition_payload("fulfilled"), 1, "does not support this event version"),
        ("order.placed", placed_payload(with_category=False), 2, "category"),
        ("order.paid", transition_payload("paid"), 1, "payment_id"),
        ("order.cancelled", {**transition_payload("cancelled"), "order_id": str(uuid.uuid4())}, 1, "differs from aggregate id"),
        ("order.cancelled", {**transition_payload("cancelled"), "total": "1.005"}, 1, "fractions of a cent"),
    ],
)
def test_unusable_events_rejected(event_type, payload, version, message):
    with pytest.raises(UnusableEvent, match=message):
        parse_order_event(envelope(event_type, payload, version=version))


def test_time_without_offset_rejected():
    with pytest.raises(UnusableEvent, match="UTC offset"):
        parse_order_event(envelope("order.cancelled", transition_payload("cancelled"), occurred_at="2025-03-01T10:00:00"))


def test_day_is_utc_date():
    event = parse_order_event(
        envelope("order.cancelled", transition_payload("cancelled"), occurred_at="2025-03-02T01:30:00+02:00")
    )

    assert event.day == date(2025, 3, 1)


@pytest.mark.parametrize(
    ("amount", "weights", "expected"),
    [
        ("65.00", ["25.00", "40.00"], ["25.00", "40.00"]),
        ("10.00", ["1.00", "1.00", "1.00"], ["3.34", "3.33", "3.33"]),
        ("0.01", ["30.00", "60.00"], ["0.00", "0.01"]),
        ("0.02", ["5.00", "5.00", "5.00"], ["0.01", "0.01", "0.00"]),
        ("17.33", ["37.50", "39.99"], ["8.39", "8.94"]),
        ("4.00", ["0.00", "0.00"], ["4.00", "0.00"]),
    ],
)
def test_prorate_sums_exactly(amount, weights, expected):
    parts = prorate(Decimal(amount), [Decimal(weight) for weight in weights])

    assert parts == [Decimal(part) for part in expected]
    assert sum(parts) == Decimal(amount)


def test_prorate_rejects_no_weights():
    with pytest.raises(ValueError, match="at least one weight"):
        prorate(Decimal("1.00"), [])


def test_paid_contribution_per_sku():
    event = parse_order_event(envelope("order.paid", transition_payload("paid", payment_id="pay_1"), aggregate_version=2))
    lines = [
        PlacedLine(0, "MUG-1", "kitchen-mugs", 2, Decimal("12.50"), Decimal("25.00")),
        PlacedLine(1, "MUG-1", "kitchen-mugs", 1, Decimal("5.00"), Decimal("5.00")),
    ]

    order_part = order_contribution(event)
    sku_parts = sku_contributions(event, lines)

    assert order_part == (OrderStatsKey(date(2025, 3, 1), "USD"), {"orders_paid": 1, "revenue": Decimal("30.00")})
    # Two lines of one SKU: the order counts once, units and money add up.
    assert sku_parts == {
        SkuStatsKey(date(2025, 3, 1), "USD", "kitchen-mugs", "MUG-1"): {
            "orders_paid": 1,
            "units_sold": 3,
            "revenue": Decimal("30.00"),
        }
    }


def test_full_refund_counts_order_refunded():
    payload = transition_payload("refunded", refund_id=str(uuid.uuid4()), amount="30.00", refunded_total="30.00")
    partial = {**payload, "state": "partially_refunded", "amount": "10.00", "refunded_total": "10.00"}

    full_part = order_contribution(parse_order_event(envelope("order.refunded", payload, aggregate_version=3)))
    partial_part = order_contribution(parse_order_event(envelope("order.refunded", partial, aggregate_version=3)))

    assert full_part[1] == {"orders_refunded": 1, "refunds": Decimal("30.00")}
    assert partial_part[1] == {"refunds": Decimal("10.00")}


def test_fulfilled_contributes_nothing():
    event = parse_order_event(envelope("order.fulfilled", transition_payload("fulfilled"), aggregate_version=3))

    assert order_contribution(event) is None
    assert sku_contributions(event, [PlacedLine(0, "MUG-1", "", 1, Decimal("1.00"), Decimal("1.00"))]) == {}


def test_committed_means_paid_and_not_fully_refunded():
    assert COMMITTED_STATES == set(PAID_STATES) - {OrderState.REFUNDED}
    assert COMMITTED_STATES <= set(OrderState.values)
    assert not is_committed(OrderState.PENDING_PAYMENT)
    assert committed_revenue(state="partially_refunded", total=Decimal("30.00"), refunded_total=Decimal("7.77")) == Decimal("22.23")
    assert committed_revenue(state="refunded", total=Decimal("30.00"), refunded_total=Decimal("30.00")) == Decimal("0.00")
    assert committed_revenue(state="cancelled", total=Decimal("30.00"), refunded_total=Decimal("0.00")) == Decimal("0.00")


def test_placed_v2_schema_extends_v1():
    schemas = load_schemas()
    v1, v2 = schemas[("order.placed", 1)], schemas[("order.placed", 2)]

    assert v2["required"] == v1["required"]
    assert set(v2["properties"]["lines"]["items"]["properties"]) == {"sku", "quantity", "unit_price", "category"}

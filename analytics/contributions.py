"""Compute what one order event adds to the daily tables.

These functions are pure, so the consumer (which adds an event's
contribution), the repair path (which subtracts it) and the reconciliation
(which recomputes the daily tables from the facts) all use the same
arithmetic.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from fractions import Fraction
from math import floor
from typing import Protocol

from analytics.events import CANCELLED, EXPIRED, PAID, PLACED, REFUNDED
from orders.models import OrderState

CENT = Decimal("0.01")

Deltas = dict[str, int | Decimal]

_COUNT_BY_TYPE = {
    PLACED: "orders_placed",
    PAID: "orders_paid",
    CANCELLED: "orders_cancelled",
    EXPIRED: "orders_expired",
}


class EventLike(Protocol):
    event_type: str
    state: str
    currency: str
    amount: Decimal

    @property
    def day(self) -> date: ...


class LineLike(Protocol):
    line_number: int
    sku: str
    category: str
    quantity: int
    line_total: Decimal


@dataclass(frozen=True, order=True)
class OrderStatsKey:
    day: date
    currency: str


@dataclass(frozen=True, order=True)
class SkuStatsKey:
    day: date
    currency: str
    category: str
    sku: str


def order_contribution(event: EventLike) -> tuple[OrderStatsKey, Deltas] | None:
    """Return the DailyOrderStats row key and measure deltas of one event, or None when it adds nothing."""
    deltas: Deltas = dict(_count_deltas(event))
    if event.event_type == PAID:
        deltas["revenue"] = event.amount
    elif event.event_type == REFUNDED:
        deltas["refunds"] = event.amount
    if not deltas:
        return None
    return OrderStatsKey(day=event.day, currency=event.currency), deltas


def sku_contributions(event: EventLike, lines: Sequence[LineLike]) -> dict[SkuStatsKey, Deltas]:
    """Return the DailySkuStats deltas of one event, given the lines of its order.

    Each SKU row of the order counts the order once, however many lines
    carry that SKU. A refund is split over the lines by `prorate`.
    """
    counts = _count_deltas(event)
    if not counts and event.event_type not in (PAID, REFUNDED):
        return {}

    ordered = sorted(lines, key=lambda line: line.line_number)
    shares = prorate(event.amount, [line.line_total for line in ordered]) if event.event_type == REFUNDED else []
    result: dict[SkuStatsKey, Deltas] = {}
    for index, line in enumerate(ordered):
        key = SkuStatsKey(day=event.day, currency=event.currency, category=line.category, sku=line.sku)
        deltas = result.get(key)
        if deltas is None:
            deltas = result[key] = dict(counts)
        if event.event_type == PAID:
            deltas["units_sold"] = deltas.get("units_sold", 0) + line.quantity
            deltas["revenue"] = deltas.get("revenue", Decimal("0.00")) + line.line_total
        elif event.event_type == REFUNDED:
            deltas["refunds"] = deltas.get("refunds", Decimal("0.00")) + shares[index]
    return result


def prorate(amount: Decimal, weights: Sequence[Decimal]) -> list[Decimal]:
    """Split `amount` into whole cents in proportion to `weights`, so that the parts sum to exactly `amount`.

    Each part is first rounded down, and the cents left over go to the parts
    with the largest rounding loss, the earlier one on a tie, so the result
    depends only on the inputs. With all weights zero the first part takes
    everything. Raises ValueError for an empty `weights` or a negative weight.
    """
    if not weights:
        raise ValueError("prorate needs at least one weight.")
    if any(weight < 0 for weight in weights):
        raise ValueError(f"prorate weights must not be negative, got {list(weights)}.")

    cents = int(amount / CENT)
    weight_cents = [int(weight / CENT) for weight in weights]
    total_weight = sum(weight_cents)
    if total_weight == 0:
        return [amount] + [Decimal("0.00")] * (len(weights) - 1)

    exact = [Fraction(cents * weight, total_weight) for weight in weight_cents]
    parts = [floor(value) for value in exact]
    leftover = cents - sum(parts)
    by_loss = sorted(range(len(parts)), key=lambda index: (-(exact[index] - parts[index]), index))
    for index in by_loss[:leftover]:
        parts[index] += 1
    return [Decimal(part) * CENT for part in parts]


def _count_deltas(event: EventLike) -> dict[str, int]:
    measure = _COUNT_BY_TYPE.get(event.event_type)
    if measure is not None:
        return {measure: 1}
    # A partial refund moves money but leaves the order counted as paid.
    if event.event_type == REFUNDED and event.state == OrderState.REFUNDED:
        return {"orders_refunded": 1}
    return {}

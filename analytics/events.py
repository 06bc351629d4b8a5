"""Parse order events of every supported schema version into one shape for the projection.

order.placed v2 adds `category` to each line; v1 lines have none, and the
projection files them under the empty category. Every other field means the
same in both versions, so order counts and money do not depend on the
version a producer wrote.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation

from django.utils.dateparse import parse_datetime

from cdc.envelope import Envelope
from cdc.event_schemas import InvalidEventPayload, UnknownEventType, validate_payload

CENT = Decimal("0.01")

PLACED = "order.placed"
PAID = "order.paid"
CANCELLED = "order.cancelled"
EXPIRED = "order.expired"
FULFILLED = "order.fulfilled"
REFUNDED = "order.refunded"

# Schema versions the projection supports. A version missing here
# is rejected even when its schema exists, because a new version may change
# what a field means in a way the schema compatibility check cannot see.
SUPPORTED_VERSIONS: dict[str, frozenset[int]] = {
    PLACED: frozenset({1, 2}),
    PAID: frozenset({1}),
    CANCELLED: frozenset({1}),
    EXPIRED: frozenset({1}),
    FULFILLED: frozenset({1}),
    REFUNDED: frozenset({1}),
}


class UnusableEvent(ValueError):
    """Raised for an order event the projection can never apply as it is (invalid or of an unsupported version)."""


@dataclass(frozen=True)
class PlacedLine:
    line_number: int
    sku: str
    category: str
    quantity: int
    unit_price: Decimal
    line_total: Decimal


@dataclass(frozen=True)
class OrderEvent:
    """An order event reduced to what the projection stores; money in Decimal cents."""

    event_id: uuid.UUID
    order_id: uuid.UUID
    aggregate_version: int
    event_type: str
    schema_version: int
    occurred_at: datetime
    state: str
    currency: str
    total: Decimal
    refunded_total: Decimal
    amount: Decimal
    # Only order.placed carries lines.
    lines: tuple[PlacedLine, ...] = ()

    @property
    def day(self) -> date:
        return self.occurred_at.astimezone(UTC).date()


def parse_order_event(envelope: Envelope) -> OrderEvent:
    """Validate an order event envelope against its schema and convert it.

    Raises UnusableEvent for an unsupported type or version, a payload that
    fails its JSON Schema, an order id that differs from the aggregate id,
    or an `occurred_at` without a UTC offset.
    """
    name = f"{envelope.type} v{envelope.version} {envelope.event_id}"
    supported = SUPPORTED_VERSIONS.get(envelope.type)
    if supported is None or envelope.version not in supported:
        raise UnusableEvent(
            f"{name}: the analytics projection does not support this event version. Deploy a consumer that "
            "handles it, then run `replay_dlq analytics`."
        )
    payload = envelope.payload
    try:
        validate_payload(envelope.type, envelope.version, payload)
    except (InvalidEventPayload, UnknownEventType) as error:
        raise UnusableEvent(f"{name}: {error}") from error

    try:
        event_id = uuid.UUID(envelope.event_id)
        order_id = uuid.UUID(str(payload["order_id"]))
    except ValueError as error:
        raise UnusableEvent(f"{name}: invalid id: {error}.") from error
    if str(order_id) != envelope.aggregate_id:
        raise UnusableEvent(f"{name}: payload order_id {order_id} differs from aggregate id {envelope.aggregate_id}.")

    occurred_at = _parse_time(envelope.occurred_at, name)
    total = _money(payload["total"], name)
    if envelope.type == PLACED:
        return OrderEvent(
            event_id=event_id,
            order_id=order_id,
            aggregate_version=envelope.aggregate_version,
            event_type=envelope.type,
            schema_version=envelope.version,
            occurred_at=occurred_at,
            state=payload["state"],
            currency=payload["currency"],
            total=total,
            refunded_total=Decimal("0.00"),
            amount=Decimal("0.00"),
            lines=tuple(_parse_line(number, line, name) for number, line in enumerate(payload["lines"])),
        )

    if envelope.type == PAID:
        amount = total
    elif envelope.type == REFUNDED:
        amount = _money(payload["amount"], name)
    else:
        amount = Decimal("0.00")
    return OrderEvent(
        event_id=event_id,
        order_id=order_id,
        aggregate_version=envelope.aggregate_version,
        event_type=envelope.type,
        schema_version=envelope.version,
        occurred_at=occurred_at,
        state=payload["state"],
        currency=payload["currency"],
        total=total,
        refunded_total=_money(payload["refunded_total"], name),
        amount=amount,
    )


def _parse_line(number: int, line: dict, name: str) -> PlacedLine:
    unit_price = _money(line["unit_price"], name)
    quantity = int(line["quantity"])
    return PlacedLine(
        line_number=number,
        sku=line["sku"],
        # v2 sends null for a product without a category; v1 has no key at all.
        category=line.get("category") or "",
        quantity=quantity,
        unit_price=unit_price,
        line_total=(unit_price * quantity).quantize(CENT),
    )


def _money(value: str, name: str) -> Decimal:
    try:
        amount = Decimal(value)
    except InvalidOperation as error:
        raise UnusableEvent(f"{name}: {value!r} is not a decimal amount.") from error
    if amount != amount.quantize(CENT):
        raise UnusableEvent(f"{name}: {value!r} has fractions of a cent.")
    return amount.quantize(CENT)


def _parse_time(value: str, name: str) -> datetime:
    try:
        moment = parse_datetime(value)
    except ValueError:
        moment = None
    # A time without an offset cannot be given a UTC day.
    if moment is None or moment.tzinfo is None:
        raise UnusableEvent(f"{name}: occurred_at {value!r} is not an ISO 8601 time with a UTC offset.")
    return moment

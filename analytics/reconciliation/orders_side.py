"""Read the orders database side: orders placed in a date range, and order events still in the outbox.

This is the only analytics module that reads the orders database, and the
projection is never built from what it reads.
"""
from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta

from analytics.reconciliation.records import ID_BATCH_SIZE, OrderRow, batches
from commerce.models import OutboxEvent
from orders.models import Order

_FIELDS = ("id", "created_at", "state", "version", "currency", "total", "refunded_total")


def orders_placed_between(start: date, end: date) -> dict[uuid.UUID, OrderRow]:
    """Return the orders created on the UTC days from `start` to `end`, both included."""
    # TODO: orders have no index on created_at, so this scans the table. Add one
    # in orders/ before the table grows too large for a scan every 15 minutes.
    since = datetime.combine(start, time.min, tzinfo=UTC)
    until = datetime.combine(end + timedelta(days=1), time.min, tzinfo=UTC)
    rows = Order.objects.filter(created_at__gte=since, created_at__lt=until).values_list(*_FIELDS)
    return {row.order_id: row for row in map(_to_row, rows.iterator(chunk_size=ID_BATCH_SIZE))}


def orders_by_id(order_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, OrderRow]:
    """Return the orders with these ids, whatever their day; unknown ids are absent."""
    found: dict[uuid.UUID, OrderRow] = {}
    for batch in batches(order_ids):
        for values in Order.objects.filter(id__in=batch).values_list(*_FIELDS):
            row = _to_row(values)
            found[row.order_id] = row
    return found


def unrelayed_order_versions() -> set[tuple[uuid.UUID, int]]:
    """Return (order id, version) of every order event still in the outbox.

    The relay deletes an outbox row only after Kafka acknowledged it, so an
    event is either here or already in Kafka.
    """
    versions: set[tuple[uuid.UUID, int]] = set()
    rows = OutboxEvent.objects.filter(aggregate_type="order").values_list("aggregate_id", "aggregate_version")
    for aggregate_id, version in rows.iterator(chunk_size=ID_BATCH_SIZE):
        try:
            versions.add((uuid.UUID(aggregate_id), version))
        except ValueError:
            # Not an order id, so it explains no order's difference.
            continue
    return versions


def _to_row(values: tuple) -> OrderRow:
    order_id, created_at, state, version, currency, total, refunded_total = values
    return OrderRow(
        order_id=order_id,
        day=created_at.astimezone(UTC).date(),
        state=state,
        version=version,
        currency=currency,
        total=total,
        refunded_total=refunded_total,
    )


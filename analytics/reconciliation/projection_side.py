"""Read the projection side: each order's applied versions and its state after the newest one."""
from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import date

from analytics.events import PLACED
from analytics.models import OrderEventFact
from analytics.reconciliation.records import ID_BATCH_SIZE, ProjectedOrder, batches


def orders_placed_in_projection(start: date, end: date) -> set[uuid.UUID]:
    """Return the ids of orders whose order.placed fact falls on the UTC days from `start` to `end`."""
    return set(
        OrderEventFact.objects.filter(event_type=PLACED, day__gte=start, day__lte=end).values_list("order_id", flat=True)
    )


def projected_orders(order_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, ProjectedOrder]:
    """Fold the facts of each given order into one ProjectedOrder; orders without facts are absent."""
    projected: dict[uuid.UUID, ProjectedOrder] = {}
    for batch in batches(order_ids):
        facts = (
            OrderEventFact.objects.filter(order_id__in=batch)
            .order_by("order_id", "aggregate_version")
            .values_list("order_id", "aggregate_version", "event_type", "day", "state", "currency", "total", "refunded_total")
        )
        grouped: dict[uuid.UUID, list[tuple]] = {}
        for fact in facts.iterator(chunk_size=ID_BATCH_SIZE):
            grouped.setdefault(fact[0], []).append(fact)
        for order_id, rows in grouped.items():
            projected[order_id] = _fold(order_id, rows)
    return projected


def _fold(order_id: uuid.UUID, rows: list[tuple]) -> ProjectedOrder:
    # Rows are sorted by version, so the last one is the newest state.
    _, _, _, _, state, currency, total, refunded_total = rows[-1]
    placed_days = [row[3] for row in rows if row[2] == PLACED]
    return ProjectedOrder(
        order_id=order_id,
        day=placed_days[0] if placed_days else min(row[3] for row in rows),
        versions=frozenset(row[1] for row in rows),
        state=state,
        currency=currency,
        total=total,
        refunded_total=refunded_total,
    )

"""Check the daily tables against the facts they were summed from.

The consumer adds each event's contribution to the daily tables in the
transaction that stores its fact. Recomputing the sums from the facts with
the same functions (analytics.contributions) therefore gives the stored
values, unless an event was added twice, lost, or a row was edited by hand.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.db import connections, transaction

from analytics.contributions import Deltas, order_contribution, sku_contributions
from analytics.models import ORDER_MEASURES, SKU_MEASURES, DailyOrderStats, DailySkuStats, OrderEventFact, OrderLineFact
from analytics.reconciliation.records import ID_BATCH_SIZE, batches
from analytics.router import ANALYTICS_DATABASE


@dataclass(frozen=True)
class AggregateDrift:
    """One measure of one daily row that differs from the sum of its facts."""

    table: str
    day: date
    currency: str
    category: str | None
    sku: str | None
    measure: str
    stored: int | Decimal
    from_facts: int | Decimal

    def as_dict(self) -> dict:
        return {
            "table": self.table,
            "day": self.day.isoformat(),
            "currency": self.currency,
            "category": self.category,
            "sku": self.sku,
            "measure": self.measure,
            "stored": _plain(self.stored),
            "from_facts": _plain(self.from_facts),
        }


def aggregate_drift(start: date, end: date) -> list[AggregateDrift]:
    """Return every daily measure from `start` to `end` (UTC days, inclusive) that differs from its facts.

    Facts and sums are read in one REPEATABLE READ transaction, so an event
    that the consumer commits between the two reads cannot look like drift.
    Called inside a transaction, it reads with that transaction's isolation.
    """
    connection = connections[ANALYTICS_DATABASE]
    outermost = not connection.in_atomic_block
    with transaction.atomic(using=ANALYTICS_DATABASE):
        if outermost:
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        facts = OrderEventFact.objects.filter(day__gte=start, day__lte=end).order_by("id")
        fact_list = list(facts.iterator(chunk_size=ID_BATCH_SIZE))
        lines_by_order = _lines_by_order({fact.order_id for fact in fact_list})
        stored_orders = {
            (row.day, row.currency): {measure: getattr(row, measure) for measure in ORDER_MEASURES}
            for row in DailyOrderStats.objects.filter(day__gte=start, day__lte=end)
        }
        stored_skus = {
            (row.day, row.currency, row.category, row.sku): {measure: getattr(row, measure) for measure in SKU_MEASURES}
            for row in DailySkuStats.objects.filter(day__gte=start, day__lte=end)
        }

    expected_orders: dict[tuple, Deltas] = {}
    expected_skus: dict[tuple, Deltas] = {}

    for fact in fact_list:
        part = order_contribution(fact)
        if part is not None:
            key, deltas = part
            _accumulate(expected_orders, (key.day, key.currency), deltas)
        for key, deltas in sku_contributions(fact, lines_by_order.get(fact.order_id, [])).items():
            _accumulate(expected_skus, (key.day, key.currency, key.category, key.sku), deltas)

    drift = _compare("daily_order_stats", stored_orders, expected_orders, ORDER_MEASURES)
    drift += _compare("daily_sku_stats", stored_skus, expected_skus, SKU_MEASURES)
    return drift


def _lines_by_order(order_ids: set[uuid.UUID]) -> dict[uuid.UUID, list[OrderLineFact]]:
    lines: dict[uuid.UUID, list[OrderLineFact]] = {}
    for batch in batches(sorted(order_ids)):
        for line in OrderLineFact.objects.filter(order_id__in=batch):
            lines.setdefault(line.order_id, []).append(line)
    return lines


def _accumulate(target: dict[tuple, Deltas], key: tuple, deltas: Deltas) -> None:
    row = target.setdefault(key, {})
    for measure, value in deltas.items():
        row[measure] = row.get(measure, 0) + value


def _compare(table: str, stored: dict[tuple, dict], expected: dict[tuple, Deltas], measures: tuple[str, ...]) -> list[AggregateDrift]:
    drift = []
    for key in sorted(set(stored) | set(expected)):
        stored_row, expected_row = stored.get(key, {}), expected.get(key, {})
        for measure in measures:
            stored_value, expected_value = stored_row.get(measure, 0), expected_row.get(measure, 0)
            if stored_value != expected_value:
                day, currency, *rest = key
                drift.append(
                    AggregateDrift(
                        table=table,
                        day=day,
                        currency=currency,
                        category=rest[0] if rest else None,
                        sku=rest[1] if rest else None,
                        measure=measure,
                        stored=stored_value,
                        from_facts=expected_value,
                    )
                )
    return drift


def _plain(value: int | Decimal) -> int | str:
    # Money leaves as a string so that JSON readers do not round it through a float.
    return str(value) if isinstance(value, Decimal) else value

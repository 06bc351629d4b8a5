"""Write side of the projection: record an order event, apply it, or take it back out.

Every function here writes the analytics database only. The consumer calls
`projection_claim_event` and `projection_apply_event` inside one transaction
that the consumer framework opens on the analytics database, so the
deduplication record, the facts and the daily sums commit together.
"""
from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence

from django.db import connections, transaction
from django.db.models import Model

from analytics.contributions import Deltas, LineLike, order_contribution, sku_contributions
from analytics.events import OrderEvent, UnusableEvent
from analytics.models import (
    ORDER_MEASURES,
    SKU_MEASURES,
    AppliedEvent,
    DailyOrderStats,
    DailySkuStats,
    OrderEventFact,
    OrderLineFact,
)
from analytics.router import ANALYTICS_DATABASE
from cdc.consumers.base import Source
from cdc.envelope import Envelope
from commerce.logging import get_logger

log = get_logger(__name__)


class OrderLinesMissing(Exception):
    """Raised for an order event whose order has no lines in the projection, because order.placed was not applied."""


def projection_claim_event(*, envelope: Envelope) -> bool:
    """Insert the AppliedEvent row in the open analytics transaction; return False when the event was applied before.

    ON CONFLICT DO NOTHING covers both unique keys, the event id and the
    (order, version) pair. A concurrent delivery of the same event waits on
    the unique index until the first transaction ends. Raises UnusableEvent
    when the aggregate id is not a UUID, and RuntimeError outside a transaction.
    """
    connection = connections[ANALYTICS_DATABASE]
    if not connection.in_atomic_block:
        raise RuntimeError("projection_claim_event must run inside the transaction of the projection writes.")
    try:
        order_id = uuid.UUID(envelope.aggregate_id)
    except ValueError as error:
        raise UnusableEvent(f"{envelope.type} {envelope.event_id}: aggregate id {envelope.aggregate_id!r} is not a UUID.") from error

    table = connection.ops.quote_name(AppliedEvent._meta.db_table)
    # The table name comes from the model and every value is a parameter, so the f-string injects nothing.
    sql = (
        f"INSERT INTO {table} (event_id, order_id, aggregate_version, event_type, applied_at) "  # noqa: S608
        "VALUES (%s, %s, %s, %s, now()) ON CONFLICT DO NOTHING RETURNING event_id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [envelope.event_id, order_id, envelope.aggregate_version, envelope.type])
        if cursor.fetchone() is not None:
            return True

    if not AppliedEvent.objects.filter(event_id=envelope.event_id).exists():
        # The outbox allows one event per order version, so a second event id for
        # one version means a writer bypassed it. The first event stays counted.
        log.warning(
            "analytics_order_version_already_applied",
            event_id=envelope.event_id,
            event_type=envelope.type,
            order_id=str(order_id),
            aggregate_version=envelope.aggregate_version,
        )
    return False


def projection_apply_event(*, event: OrderEvent, source: Source) -> None:
    """Store the event's fact (and its lines for order.placed) and add its contribution to the daily tables.

    Must run in the transaction that claimed the event. Raises
    OrderLinesMissing when a later event of an order arrives before its
    order.placed was applied.
    """
    if not connections[ANALYTICS_DATABASE].in_atomic_block:
        raise RuntimeError("projection_apply_event must run inside the transaction that claimed the event.")

    if event.lines:
        # Lines never change after checkout, so an order.placed applied again
        # after projection_forget_event finds its lines already there.
        OrderLineFact.objects.bulk_create(
            [
                OrderLineFact(
                    order_id=event.order_id,
                    line_number=line.line_number,
                    sku=line.sku,
                    category=line.category,
                    quantity=line.quantity,
                    unit_price=line.unit_price,
                    line_total=line.line_total,
                )
                for line in event.lines
            ],
            ignore_conflicts=True,
        )
        lines: Sequence[LineLike] = event.lines
    else:
        lines = list(OrderLineFact.objects.filter(order_id=event.order_id))
        if not lines:
            raise OrderLinesMissing(
                f"{event.event_type} {event.event_id} for order {event.order_id} arrived before the order's "
                "order.placed was applied. Re-drive order.placed first (replay_dlq analytics), then this event."
            )

    OrderEventFact.objects.create(
        event_id=event.event_id,
        order_id=event.order_id,
        aggregate_version=event.aggregate_version,
        event_type=event.event_type,
        schema_version=event.schema_version,
        occurred_at=event.occurred_at,
        day=event.day,
        state=event.state,
        currency=event.currency,
        total=event.total,
        refunded_total=event.refunded_total,
        amount=event.amount,
        topic=source.topic,
        partition=source.partition,
        offset=source.offset,
    )
    _add_contributions(event, lines, subtract=False)


def projection_forget_event(*, event_id: uuid.UUID | str) -> bool:
    """Remove an applied event's fact, its contribution to the daily tables and its AppliedEvent row.

    A later replay applies the event again. Lines of a forgotten
    order.placed stay, because other events of the order still need them.
    Returns False when the event was not applied.
    """
    with transaction.atomic(using=ANALYTICS_DATABASE):
        fact = OrderEventFact.objects.select_for_update().filter(event_id=event_id).first()
        if fact is None:
            return False
        lines = list(OrderLineFact.objects.filter(order_id=fact.order_id))
        _add_contributions(fact, lines, subtract=True)
        fact.delete()
        AppliedEvent.objects.filter(event_id=event_id).delete()

    log.warning(
        "analytics_event_forgotten",
        event_id=str(event_id),
        event_type=fact.event_type,
        order_id=str(fact.order_id),
        aggregate_version=fact.aggregate_version,
    )
    return True


def _add_contributions(event, lines: Sequence[LineLike], *, subtract: bool) -> None:
    write = _subtract_from_rows if subtract else _add_to_rows
    order_part = order_contribution(event)
    if order_part is not None:
        write(DailyOrderStats, ("day", "currency"), ORDER_MEASURES, [order_part])

    sku_parts = sku_contributions(event, lines)
    if sku_parts:
        write(DailySkuStats, ("day", "currency", "category", "sku"), SKU_MEASURES, sorted(sku_parts.items()))


def _add_to_rows(
    model: type[Model], key_fields: tuple[str, ...], measures: tuple[str, ...], rows: Iterable[tuple[object, Deltas]]
) -> None:
    """Add deltas to the daily rows with the given keys, inserting the rows that do not exist yet.

    One INSERT ... ON CONFLICT DO UPDATE per call. PostgreSQL locks the rows
    in the order of the VALUES list. Every caller locks the day's order row
    first and then SKU rows in sorted key order, so two transactions that
    update overlapping rows wait for each other instead of deadlocking.
    """
    rows = list(rows)
    connection = connections[ANALYTICS_DATABASE]
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    columns = key_fields + measures
    row_placeholder = "(" + ", ".join(["%s"] * len(columns)) + ")"
    updates = ", ".join(f"{quote(measure)} = {table}.{quote(measure)} + EXCLUDED.{quote(measure)}" for measure in measures)
    # Identifiers come from the model and constants above; every value is a parameter.
    sql = (
        f"INSERT INTO {table} ({', '.join(quote(column) for column in columns)}) "  # noqa: S608
        f"VALUES {', '.join([row_placeholder] * len(rows))} "
        f"ON CONFLICT ({', '.join(quote(field) for field in key_fields)}) DO UPDATE SET {updates}"
    )
    params: list[object] = []
    for key, deltas in rows:
        params.extend(getattr(key, field) for field in key_fields)
        params.extend(deltas.get(measure, 0) for measure in measures)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _subtract_from_rows(
    model: type[Model], key_fields: tuple[str, ...], measures: tuple[str, ...], rows: Iterable[tuple[object, Deltas]]
) -> None:
    """Subtract deltas from existing daily rows, in key order; raises RuntimeError when a row is missing.

    An UPDATE, because PostgreSQL checks an INSERT's row against the check
    constraints before ON CONFLICT applies, so a negative delta could not go
    through `_add_to_rows`.
    """
    connection = connections[ANALYTICS_DATABASE]
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    updates = ", ".join(f"{quote(measure)} = {quote(measure)} - %s" for measure in measures)
    where = " AND ".join(f"{quote(field)} = %s" for field in key_fields)
    # Identifiers come from the model and constants above; every value is a parameter.
    sql = f"UPDATE {table} SET {updates} WHERE {where}"  # noqa: S608
    with connection.cursor() as cursor:
        for key, deltas in rows:
            cursor.execute(
                sql, [deltas.get(measure, 0) for measure in measures] + [getattr(key, field) for field in key_fields]
            )
            if cursor.rowcount != 1:
                raise RuntimeError(f"{model.__name__} has no row for {key}, so the event's contribution cannot be removed.")

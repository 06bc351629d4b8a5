"""Run one reconciliation over a range of UTC days."""
from __future__ import annotations

from datetime import date

from django.utils import timezone

from analytics.consumers import AnalyticsConsumer
from analytics.reconciliation.drift import aggregate_drift
from analytics.reconciliation.kafka_backlog import BacklogUnavailable, consumer_backlog
from analytics.reconciliation.orders_side import orders_by_id, orders_placed_between, unrelayed_order_versions
from analytics.reconciliation.projection_side import orders_placed_in_projection, projected_orders
from analytics.reconciliation.report import Report, add_to_buckets, classify
from cdc.envelope import topic_for

__all__ = ["BacklogUnavailable", "reconcile"]


def reconcile(*, start: date, end: date) -> Report:
    """Compare the orders placed from `start` to `end` (UTC days, inclusive) with the projection.

    The reads run in the direction events flow (orders, outbox, Kafka,
    projection). An event is always in at least one of the last three places
    and only moves downstream. So every event of an order read in the first
    step is found by one of the later reads. Raises BacklogUnavailable when
    Kafka is unreachable, because lag then cannot be distinguished from loss.
    """
    if start > end:
        raise ValueError(f"The start day {start} is after the end day {end}.")

    orders = orders_placed_between(start, end)
    unrelayed = unrelayed_order_versions()
    consumer = AnalyticsConsumer()
    backlog = consumer_backlog(group_id=consumer.group_id(), topic=topic_for("order"))
    projection_only = orders_placed_in_projection(start, end) - orders.keys()
    projected = projected_orders(orders.keys() | projection_only)

    # Read again after the projection: orders the projection is ahead of moved
    # during the run, and projection-only orders may belong to a day just outside the range.
    newer = {order_id for order_id, order in orders.items() if order_id in projected and projected[order_id].version > order.version}
    reread = orders_by_id(newer | projection_only)

    buckets: dict = {}
    committed: dict = {}
    differences = []
    for order_id in sorted(orders.keys() | projection_only):
        order = orders.get(order_id)
        if order is None and order_id in reread:
            # The orders database placed it on a neighbouring day by its own clock, or after the
            # first read. The run that covers its day, or the next run, compares it.
            continue
        difference = classify(
            order=order,
            projected=projected.get(order_id),
            reread=reread.get(order_id),
            unrelayed=unrelayed,
            unconsumed=backlog.versions,
        )
        add_to_buckets(buckets, committed, order=order, projected=projected.get(order_id), difference=difference)
        if difference is not None:
            differences.append(difference)

    return Report(
        start=start,
        end=end,
        generated_at=timezone.now(),
        buckets=buckets,
        committed=committed,
        differences=differences,
        drift=aggregate_drift(start, end),
        backlog=backlog,
        unrelayed_events=len(unrelayed),
    )

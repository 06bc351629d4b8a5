"""Classify each order's difference as lag or unexplained, and sum the differences per day, state and currency."""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from analytics.definitions import committed_revenue, is_committed
from analytics.reconciliation.drift import AggregateDrift
from analytics.reconciliation.kafka_backlog import ConsumerBacklog
from analytics.reconciliation.records import OrderRow, ProjectedOrder

LAG = "lag"
UNEXPLAINED = "unexplained"

# Reasons a difference is lag: its missing events are still on their way.
NOT_RELAYED = "not_relayed"
NOT_CONSUMED = "not_consumed"
CHANGED_DURING_RUN = "changed_during_run"
# Reasons a difference is unexplained.
MISSING_EVENTS = "missing_events"
UNEXPECTED_EVENTS = "unexpected_events"
MISMATCH = "mismatch"
NOT_IN_ORDERS = "not_in_orders"


@dataclass(frozen=True)
class OrderDifference:
    order_id: uuid.UUID
    day: date
    classification: str
    reason: str
    detail: str
    orders_state: str | None
    orders_version: int | None
    projection_state: str | None
    projection_version: int | None
    missing_versions: tuple[int, ...] = ()

    def as_dict(self) -> dict:
        return {
            "order_id": str(self.order_id),
            "day": self.day.isoformat(),
            "classification": self.classification,
            "reason": self.reason,
            "detail": self.detail,
            "orders": {"state": self.orders_state, "version": self.orders_version},
            "projection": {"state": self.projection_state, "version": self.projection_version},
            "missing_versions": list(self.missing_versions),
        }


@dataclass
class Totals:
    """Order count and money of one bucket; in the lag and unexplained columns, projection minus orders."""

    count: int = 0
    total: Decimal = Decimal("0.00")
    refunded: Decimal = Decimal("0.00")

    def add(self, *, sign: int, total: Decimal, refunded: Decimal) -> None:
        self.count += sign
        self.total += sign * total
        self.refunded += sign * refunded

    def as_dict(self) -> dict:
        return {"count": self.count, "total": str(self.total), "refunded": str(self.refunded)}


@dataclass
class Bucket:
    """Orders placed on one UTC day that are now in one state, in one currency, on both sides."""

    orders: Totals = field(default_factory=Totals)
    projection: Totals = field(default_factory=Totals)
    lag: Totals = field(default_factory=Totals)
    unexplained: Totals = field(default_factory=Totals)

    def column(self, classification: str) -> Totals:
        return self.lag if classification == LAG else self.unexplained


@dataclass
class CommittedTotals:
    """Committed orders (analytics.definitions) placed on one UTC day, in one currency."""

    orders_count: int = 0
    orders_revenue: Decimal = Decimal("0.00")
    projection_count: int = 0
    projection_revenue: Decimal = Decimal("0.00")


@dataclass
class Report:
    start: date
    end: date
    generated_at: datetime
    buckets: dict[tuple[date, str, str], Bucket]
    committed: dict[tuple[date, str], CommittedTotals]
    differences: list[OrderDifference]
    drift: list[AggregateDrift]
    backlog: ConsumerBacklog
    unrelayed_events: int

    @property
    def lag(self) -> list[OrderDifference]:
        return [difference for difference in self.differences if difference.classification == LAG]

    @property
    def unexplained(self) -> list[OrderDifference]:
        return [difference for difference in self.differences if difference.classification == UNEXPLAINED]

    @property
    def has_unexplained(self) -> bool:
        return bool(self.unexplained or self.drift)

    def as_dict(self) -> dict:
        return {
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "generated_at": self.generated_at.isoformat(),
            "summary": {
                "lag_orders": len(self.lag),
                "unexplained_orders": len(self.unexplained),
                "aggregate_drift": len(self.drift),
                "unrelayed_events": self.unrelayed_events,
                "unconsumed_messages": self.backlog.pending_messages,
            },
            "states": [
                {
                    "day": day.isoformat(),
                    "state": state,
                    "currency": currency,
                    "orders": bucket.orders.as_dict(),
                    "projection": bucket.projection.as_dict(),
                    "lag": bucket.lag.as_dict(),
                    "unexplained": bucket.unexplained.as_dict(),
                }
                for (day, state, currency), bucket in sorted(self.buckets.items())
            ],
            "committed": [
                {
                    "day": day.isoformat(),
                    "currency": currency,
                    "orders": {"count": totals.orders_count, "revenue": str(totals.orders_revenue)},
                    "projection": {"count": totals.projection_count, "revenue": str(totals.projection_revenue)},
                }
                for (day, currency), totals in sorted(self.committed.items())
            ],
            "differences": [difference.as_dict() for difference in self.differences],
            "aggregate_drift": [item.as_dict() for item in self.drift],
            "consumer_backlog": self.backlog.as_dict(),
        }


def classify(
    *,
    order: OrderRow | None,
    projected: ProjectedOrder | None,
    reread: OrderRow | None,
    unrelayed: set[tuple[uuid.UUID, int]],
    unconsumed: set[tuple[uuid.UUID, int]],
) -> OrderDifference | None:
    """Compare one order on both sides; return None when they agree.

    `order` was read before the outbox, Kafka and the projection, and
    `reread` after them, so a projection newer than `order` but not newer
    than `reread` only shows that the order moved while the run was reading.
    """
    if order is None and projected is None:
        raise ValueError("classify needs the order from at least one side.")
    if order is None:
        return _difference(
            None,
            projected,
            classification=UNEXPLAINED,
            reason=NOT_IN_ORDERS,
            detail="The projection has events of an order that the orders database does not have.",
        )

    applied = projected.versions if projected is not None else frozenset()
    expected = frozenset(range(1, order.version + 1))
    extra = sorted(applied - expected)
    missing = sorted(expected - applied)

    if extra:
        if reread is not None and reread.version >= max(extra):
            return _difference(
                order,
                projected,
                classification=LAG,
                reason=CHANGED_DURING_RUN,
                detail=f"The order reached version {reread.version} while the reconciliation ran.",
            )
        return _difference(
            order,
            projected,
            classification=UNEXPLAINED,
            reason=UNEXPECTED_EVENTS,
            detail=f"The projection applied versions {extra}, which the order never reached (it is at {order.version}).",
        )

    if missing:
        lost = [
            version
            for version in missing
            if (order.order_id, version) not in unrelayed and (order.order_id, version) not in unconsumed
        ]
        if lost:
            return _difference(
                order,
                projected,
                classification=UNEXPLAINED,
                reason=MISSING_EVENTS,
                detail=(
                    f"Versions {lost} are neither in the outbox nor after the consumer's committed offsets, so they "
                    "were lost, dead-lettered or removed from the projection. Check the dead-letter topic "
                    "(replay_dlq analytics), or replay the order topic from the order's day."
                ),
                missing=tuple(missing),
            )
        reason = NOT_RELAYED if any((order.order_id, version) in unrelayed for version in missing) else NOT_CONSUMED
        where = "still in the outbox" if reason == NOT_RELAYED else "after the consumer's committed offsets"
        return _difference(
            order,
            projected,
            classification=LAG,
            reason=reason,
            detail=f"Versions {missing} are {where}.",
            missing=tuple(missing),
        )

    if (projected.state, projected.currency, projected.total, projected.refunded_total) != (
        order.state, order.currency, order.total, order.refunded_total
    ):
        return _difference(
            order,
            projected,
            classification=UNEXPLAINED,
            reason=MISMATCH,
            detail=(
                f"At version {order.version} the orders database has {order.state} {order.currency} {order.total} "
                f"(refunded {order.refunded_total}) but the projection has {projected.state} {projected.currency} "
                f"{projected.total} (refunded {projected.refunded_total})."
            ),
        )
    return None


def add_to_buckets(
    buckets: dict[tuple[date, str, str], Bucket],
    committed: dict[tuple[date, str], CommittedTotals],
    *,
    order: OrderRow | None,
    projected: ProjectedOrder | None,
    difference: OrderDifference | None,
) -> None:
    """Count one order on each side that has it; a differing order also adds projection minus orders to its column.

    Both sides are counted on the orders database's day when it has the
    order, because the projection's placement time (the event's) is a few
    milliseconds later and can fall on the next day.
    """
    day = order.day if order is not None else projected.day
    sides = ((order, -1, "orders"), (projected, 1, "projection"))
    for record, sign, side in sides:
        if record is None:
            continue
        bucket = buckets.setdefault((day, record.state, record.currency), Bucket())
        getattr(bucket, side).add(sign=1, total=record.total, refunded=record.refunded_total)
        if difference is not None:
            bucket.column(difference.classification).add(sign=sign, total=record.total, refunded=record.refunded_total)

        if is_committed(record.state):
            totals = committed.setdefault((day, record.currency), CommittedTotals())
            revenue = committed_revenue(state=record.state, total=record.total, refunded_total=record.refunded_total)
            if side == "orders":
                totals.orders_count += 1
                totals.orders_revenue += revenue
            else:
                totals.projection_count += 1
                totals.projection_revenue += revenue


def _difference(
    order: OrderRow | None,
    projected: ProjectedOrder | None,
    *,
    classification: str,
    reason: str,
    detail: str,
    missing: tuple[int, ...] = (),
) -> OrderDifference:
    # The orders database's id and day when it has the order, the projection's otherwise.
    known = order if order is not None else projected
    return OrderDifference(
        order_id=known.order_id,
        day=known.day,
        classification=classification,
        reason=reason,
        detail=detail,
        orders_state=order.state if order is not None else None,
        orders_version=order.version if order is not None else None,
        projection_state=projected.state if projected is not None else None,
        projection_version=projected.version if projected is not None else None,
        missing_versions=missing,
    )

"""Consistency checks across boundaries, for a quiet system (after a load test, in CI, on demand).

Each check returns a CheckResult with counts and the ids of violations. The
checks read only; `python manage.py audit_consistency` prints them and exits
non-zero on any violation.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import connection
from django.db.models import Count, F, Q

from commerce.models import OutboxEvent
from inventory.models import StockItem
from inventory.selectors import stock_drift
from orders.models import Order, OrderLine
from orders.services import PAID_STATES
from payments.models import Capture

MAX_LISTED = 20


@dataclass
class CheckResult:
    name: str
    description: str
    checked: int
    violations: list[Any] = field(default_factory=list)
    skipped: str | None = None
    # Set when `violations` lists only the first MAX_LISTED of more.
    violation_count: int | None = None

    @property
    def ok(self) -> bool:
        return not self.violations

    @property
    def total_violations(self) -> int:
        return self.violation_count if self.violation_count is not None else len(self.violations)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "ok": self.ok,
            "checked": self.checked,
            "violations": self.total_violations,
            "examples": self.violations[:MAX_LISTED],
            "skipped": self.skipped,
        }


def check_stock_bounds() -> CheckResult:
    bad = StockItem.objects.filter(Q(on_hand__lt=0) | Q(reserved__lt=0) | Q(reserved__gt=F("on_hand")))
    return CheckResult(
        name="stock_bounds",
        description="no stock item has negative counters or more reserved than on hand",
        checked=StockItem.objects.count(),
        violations=list(bad.values_list("sku", flat=True)[:MAX_LISTED]),
        violation_count=bad.count(),
    )


def check_stock_counters() -> CheckResult:
    drift = stock_drift()
    return CheckResult(
        name="stock_counters",
        description="reserved equals active reservations and on hand equals the ledger, per SKU",
        checked=StockItem.objects.count(),
        violations=[item.as_dict() for item in drift],
    )


def check_captures() -> CheckResult:
    paid = Order.objects.filter(state__in=PAID_STATES)
    uncaptured = paid.exclude(pk__in=Capture.objects.values("order_id"))
    missing = [str(order_id) for order_id in uncaptured.values_list("pk", flat=True)[:MAX_LISTED]]
    doubled = list(
        Capture.objects.values("order_id").annotate(total=Count("id")).filter(total__gt=1).values_list("order_id", flat=True)
    )
    return CheckResult(
        name="one_capture_per_paid_order",
        description="every paid order has exactly one capture and no order has two",
        checked=paid.count(),
        violations=[{"order_id": order_id, "problem": "no capture"} for order_id in missing]
        + [{"order_id": str(order_id), "problem": "several captures"} for order_id in doubled],
    )


def check_order_totals() -> CheckResult:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT o.id FROM orders_order AS o
            LEFT JOIN orders_orderline AS l ON l.order_id = o.id
            GROUP BY o.id, o.subtotal, o.total
            HAVING o.subtotal <> COALESCE(SUM(l.line_total), 0) OR o.total <> o.subtotal
            LIMIT %s
            """,
            [MAX_LISTED],
        )
        bad_totals = [str(row[0]) for row in cursor.fetchall()]
    bad_lines = list(
        OrderLine.objects.exclude(line_total=F("unit_price") * F("quantity")).values_list("order_id", flat=True)[:MAX_LISTED]
    )
    return CheckResult(
        name="order_totals",
        description="every order total equals the sum of its lines, and every line is price times quantity",
        checked=Order.objects.count(),
        violations=[{"order_id": order_id, "problem": "total"} for order_id in bad_totals]
        + [{"order_id": str(order_id), "problem": "line"} for order_id in bad_lines],
    )


def check_outbox_drained() -> CheckResult:
    backlog = OutboxEvent.objects.filter(published_at__isnull=True)
    return CheckResult(
        name="outbox_drained",
        description="the outbox has no unpublished events (the relay caught up)",
        checked=OutboxEvent.objects.count(),
        violations=[str(event_id) for event_id in backlog.order_by("id").values_list("event_id", flat=True)[:MAX_LISTED]],
        violation_count=backlog.count(),
    )


def check_search_index() -> CheckResult:
    from catalog.search.drift import drift_find

    report = drift_find()
    entries = [("missing", entry) for entry in report.missing] + [("stale", entry) for entry in report.stale]
    entries += [("orphan", entry) for entry in report.orphans]
    return CheckResult(
        name="search_index_drift",
        description="the search index holds every published product at its current version and nothing else",
        checked=report.products,
        violations=[{"product_id": entry.product_id, "problem": problem} for problem, entry in entries[:MAX_LISTED]],
        violation_count=len(entries),
    )


def check_consumer_lag() -> CheckResult:
    from django.conf import settings

    from cdc.consumers.registry import consumer_names, get_consumer
    from cdc.relay.status import consumer_group_lag

    groups = consumer_group_lag(prefix=settings.KAFKA_TOPIC_PREFIX, timeout=5.0)["groups"]
    wanted = {get_consumer(name).group_id() for name in consumer_names()}
    lagging = [
        {"group": group_id, "lag": details["lag"]}
        for group_id, details in sorted(groups.items())
        if group_id in wanted and details["lag"] > 0
    ]
    return CheckResult(
        name="consumer_lag",
        description="every running consumer group has consumed its topics to the end",
        checked=len(wanted & set(groups)),
        violations=lagging,
    )


def check_analytics_projection() -> CheckResult:
    from datetime import UTC, datetime, timedelta

    from analytics.reconciliation import reconcile

    end = datetime.now(UTC).date()
    report = reconcile(start=end - timedelta(days=6), end=end)
    # On a quiet system lag is a difference too: the projection must agree with the orders.
    differences = [
        {"order_id": str(difference.order_id), "problem": difference.classification}
        for difference in report.differences
    ]
    differences += [{"daily_measure": str(drift), "problem": "aggregate drift"} for drift in report.drift]
    return CheckResult(
        name="analytics_projection",
        description="the analytics projection counts the same committed orders as PostgreSQL (last 7 days)",
        checked=len(report.buckets),
        violations=differences[:MAX_LISTED],
        violation_count=len(differences),
    )


CHECKS: dict[str, Callable[[], CheckResult]] = {
    "stock_bounds": check_stock_bounds,
    "stock_counters": check_stock_counters,
    "one_capture_per_paid_order": check_captures,
    "order_totals": check_order_totals,
    "outbox_drained": check_outbox_drained,
    "search_index_drift": check_search_index,
    "consumer_lag": check_consumer_lag,
    "analytics_projection": check_analytics_projection,
}


def run_audit(*, skip: set[str] | None = None) -> list[CheckResult]:
    """Run every check (except the names in `skip`) and return their results in a fixed order."""
    results = []
    for name, check in CHECKS.items():
        if skip and name in skip:
            results.append(CheckResult(name=name, description="", checked=0, skipped="skipped by request"))
            continue
        try:
            result = check()
        except Exception as exc:  # noqa: BLE001 - an unreachable service is a failed check, not a crash.
            result = CheckResult(name=name, description="the check could not run", checked=0)
            result.violations = [f"{type(exc).__name__}: {exc}"[:300]]
        results.append(result)
    return results

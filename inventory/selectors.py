"""Read side of inventory, for other apps that show availability."""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from django.db import connection
from django.db.models import F, QuerySet

from inventory.models import Reservation, ReservationLine, StockItem


def availability_by_sku(skus: Iterable[str]) -> dict[str, int]:
    """Return available units (on hand minus reserved) per SKU; SKUs without stock rows map to 0."""
    skus = list(skus)
    available = {sku: 0 for sku in skus}
    rows = StockItem.objects.filter(sku__in=skus).values_list("sku", "on_hand", "reserved")
    for sku, on_hand, reserved in rows:
        available[sku] = on_hand - reserved
    return available


def skus_in_stock() -> QuerySet:
    """Return a values queryset of SKUs with at least one available unit, usable as a subquery."""
    return StockItem.objects.filter(on_hand__gt=F("reserved")).values("sku")


def stock_item_get(*, sku: str) -> StockItem | None:
    return StockItem.objects.filter(sku=sku).first()


def reservation_get(*, reference: str) -> Reservation | None:
    """Return the reservation for `reference` with its lines prefetched, or None."""
    return Reservation.objects.prefetch_related("lines").filter(reference=reference).first()


def active_reservations_for_sku(*, sku: str) -> list[ReservationLine]:
    """Return the lines of active reservations that hold units of `sku`, oldest first, with their headers."""
    return list(
        ReservationLine.objects.select_related("reservation")
        .filter(sku=sku, reservation__status=Reservation.Status.ACTIVE)
        .order_by("reservation__created_at", "reservation_id")
    )


@dataclass(frozen=True)
class StockDrift:
    """A SKU whose counters disagree with the ledger or with its active reservations.

    `on_hand` and `reserved` are None when the SKU has no stock row at all.
    """

    sku: str
    on_hand: int | None
    expected_on_hand: int
    reserved: int | None
    expected_reserved: int

    @property
    def fixable(self) -> bool:
        # Writing the expected counters must satisfy the CHECK constraint. If they
        # cannot, the ledger itself records an oversell and a person decides.
        return 0 <= self.expected_reserved <= self.expected_on_hand

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "fixable": self.fixable}


# One statement, so PostgreSQL reads every table from one snapshot. A missing
# stock row counts as zero on hand and zero reserved, as availability does.
_DRIFT_SQL = """
WITH ledger AS (
    SELECT sku, SUM(quantity) AS total FROM inventory_stockmovement {ledger_filter} GROUP BY sku
),
active AS (
    SELECT line.sku, SUM(line.quantity) AS total
    FROM inventory_reservationline AS line
    JOIN inventory_reservation AS reservation ON reservation.id = line.reservation_id
    WHERE reservation.status = 'active' {active_filter}
    GROUP BY line.sku
),
skus AS (
    SELECT sku FROM inventory_stockitem {stock_filter}
    UNION SELECT sku FROM ledger
    UNION SELECT sku FROM active
)
SELECT skus.sku, stock.on_hand, COALESCE(ledger.total, 0), stock.reserved, COALESCE(active.total, 0)
FROM skus
LEFT JOIN inventory_stockitem AS stock ON stock.sku = skus.sku
LEFT JOIN ledger ON ledger.sku = skus.sku
LEFT JOIN active ON active.sku = skus.sku
WHERE COALESCE(stock.on_hand, 0) <> COALESCE(ledger.total, 0)
   OR COALESCE(stock.reserved, 0) <> COALESCE(active.total, 0)
ORDER BY skus.sku
"""


def stock_drift(*, skus: Sequence[str] | None = None) -> list[StockDrift]:
    """Recompute `on_hand` from the ledger and `reserved` from active reservations, and return every SKU that differs.

    Checks all SKUs when `skus` is None. The full check scans the whole ledger,
    so its cost grows with the number of movements.
    """
    params: list[Any] = []
    filters = {"ledger_filter": "", "active_filter": "", "stock_filter": ""}
    if skus is not None:
        filters = {
            "ledger_filter": "WHERE sku = ANY(%s)",
            "active_filter": "AND line.sku = ANY(%s)",
            "stock_filter": "WHERE sku = ANY(%s)",
        }
        params = [list(skus)] * 3

    with connection.cursor() as cursor:
        cursor.execute(_DRIFT_SQL.format(**filters), params)
        rows = cursor.fetchall()
    return [
        StockDrift(
            sku=sku, on_hand=on_hand, expected_on_hand=int(ledger), reserved=reserved, expected_reserved=int(active)
        )
        for sku, on_hand, ledger, reserved, active in rows
    ]

"""Row-locking helpers for stock rows: every lock on a `StockItem` row is taken here.

Every helper that touches several SKUs updates them in ascending SKU order.
Each UPDATE takes the row lock it needs and keeps it until the transaction
ends, so two transactions that share SKUs queue on the first shared row
instead of each holding a row the other one waits for (a deadlock).
Callers that lock a reservation header do so before calling these helpers,
which keeps the order header first, then stock rows by SKU, everywhere.
"""
from __future__ import annotations

from collections.abc import Mapping

from django.db.models import F
from django.utils import timezone

from commerce.errors import DomainError
from inventory.models import StockItem


def stock_lock_item(*, sku: str) -> StockItem | None:
    """Lock the stock row of `sku` (SELECT ... FOR UPDATE) and return it, or None when it has none."""
    return StockItem.objects.select_for_update().filter(sku=sku).first()


def stock_lock_or_create_item(*, sku: str) -> tuple[StockItem, bool]:
    """Lock the stock row of `sku`, inserting it with zero counters first when missing.

    Returns the row and whether it was created. A concurrent insert of the same
    SKU is caught by the unique constraint and read back, as `get_or_create` does.
    """
    return StockItem.objects.select_for_update().get_or_create(sku=sku)


def stock_try_reserve(*, quantities: Mapping[str, int]) -> str | None:
    """Add `quantities` to `reserved` SKU by SKU, stopping at the first SKU that lacks the units.

    Returns that SKU, or None when every SKU was reserved. Rows updated before
    the failure stay changed, so the caller must roll its transaction back.
    """
    now = timezone.now()
    for sku in sorted(quantities):
        quantity = quantities[sku]
        # The conditional UPDATE: PostgreSQL re-checks the WHERE clause on the
        # newest row version after waiting for the lock, so concurrent callers
        # can never both take the last unit.
        updated = StockItem.objects.filter(sku=sku, on_hand__gte=F("reserved") + quantity).update(
            reserved=F("reserved") + quantity, updated_at=now
        )
        if updated == 0:
            return sku
    return None


def stock_unreserve(*, quantities: Mapping[str, int]) -> None:
    """Subtract `quantities` from `reserved`, freeing the units for other reservations."""
    now = timezone.now()
    for sku in sorted(quantities):
        updated = StockItem.objects.filter(sku=sku).update(reserved=F("reserved") - quantities[sku], updated_at=now)
        _require_row(sku, updated)


def stock_sell_reserved(*, quantities: Mapping[str, int]) -> None:
    """Subtract `quantities` from both `reserved` and `on_hand`: the reserved units leave the stock."""
    now = timezone.now()
    for sku in sorted(quantities):
        quantity = quantities[sku]
        updated = StockItem.objects.filter(sku=sku).update(
            on_hand=F("on_hand") - quantity, reserved=F("reserved") - quantity, updated_at=now
        )
        _require_row(sku, updated)


def _require_row(sku: str, updated: int) -> None:
    # Reserved units always have a stock row, because only a successful
    # conditional UPDATE creates them. A missing row means someone deleted it
    # behind the services' back, and the transaction must not go on.
    if updated == 0:
        raise DomainError(
            "stock_item_missing",
            f"No stock row for {sku}, although a reservation holds units of it.",
            status=500,
            hint="Run `manage.py reconcile_inventory` to find and repair the drift.",
            extra={"sku": sku},
        )

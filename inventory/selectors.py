"""Read side of inventory, for other apps that show availability."""
from __future__ import annotations

from collections.abc import Iterable

from django.db.models import F, QuerySet

from inventory.models import StockItem


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

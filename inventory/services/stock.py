"""Write side of inventory: every change of on-hand stock goes through here with a ledger row.

Functions join the caller's transaction when there is one (the catalog import
sets stock inside each product's transaction) and open their own otherwise.
"""
from __future__ import annotations

from collections.abc import Mapping

from django.db import transaction

from commerce.errors import ConflictError, DomainError
from commerce.logging import get_logger
from inventory.models import StockItem, StockMovement

log = get_logger(__name__)


def stock_set_on_hand(*, sku: str, on_hand: int, reason: str, actor: str) -> bool:
    """Set the on-hand count of `sku` to `on_hand`, writing the difference to the ledger.

    Returns True when the count changed. Raises DomainError for a negative count
    and ConflictError when the new count would fall below the units reserved.
    """
    if on_hand < 0:
        raise DomainError(
            "invalid_quantity",
            f"On-hand quantity for {sku} must not be negative, got {on_hand}.",
            field="on_hand",
        )

    with transaction.atomic():
        item, created = StockItem.objects.select_for_update().get_or_create(sku=sku)
        delta = on_hand - item.on_hand
        if delta == 0:
            return False

        if on_hand < item.reserved:
            raise ConflictError(
                "stock_below_reserved",
                f"Cannot set {sku} to {on_hand} on hand: {item.reserved} units are reserved.",
                extra={"sku": sku, "on_hand": item.on_hand, "reserved": item.reserved, "requested": on_hand},
            )

        item.on_hand = on_hand
        item.save(update_fields=["on_hand", "updated_at"])
        StockMovement.objects.create(
            sku=sku,
            kind=StockMovement.Kind.RECEIPT if created else StockMovement.Kind.ADJUSTMENT,
            quantity=delta,
            reason=reason,
            actor=actor,
        )

    log.info("stock_on_hand_set", sku=sku, on_hand=on_hand, delta=delta, reason=reason, actor=actor)
    return True


def stock_receive_new_skus(*, levels: Mapping[str, int], reason: str, actor: str, batch_size: int = 5000) -> int:
    """Create stock rows and receipt ledger rows for SKUs that have none yet, in bulk.

    Meant for generating large synthetic catalogs; SKUs that already have a
    stock row are left untouched. Returns the number of SKUs created.
    """
    if any(quantity < 0 for quantity in levels.values()):
        raise DomainError("invalid_quantity", "Received quantities must not be negative.", field="levels")

    with transaction.atomic():
        existing = set(StockItem.objects.filter(sku__in=list(levels)).values_list("sku", flat=True))
        new_levels = {sku: quantity for sku, quantity in levels.items() if sku not in existing}

        StockItem.objects.bulk_create(
            [StockItem(sku=sku, on_hand=quantity) for sku, quantity in new_levels.items()],
            batch_size=batch_size,
        )
        StockMovement.objects.bulk_create(
            [
                StockMovement(
                    sku=sku, kind=StockMovement.Kind.RECEIPT, quantity=quantity, reason=reason, actor=actor
                )
                for sku, quantity in new_levels.items()
                if quantity != 0
            ],
            batch_size=batch_size,
        )
    return len(new_levels)

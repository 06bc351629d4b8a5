"""On-hand stock: every change of `on_hand` goes through here together with its ledger row.

Functions join the caller's transaction when there is one (the catalog import
sets stock inside each product's transaction) and open their own otherwise.
These paths are not hot, so they lock the row with SELECT ... FOR UPDATE and
decide in Python, which lets their errors report the exact counters they saw.
"""
from __future__ import annotations

from collections.abc import Mapping

from django.db import transaction

from commerce.errors import ConflictError, DomainError, NotFoundError
from commerce.logging import get_logger
from inventory.events import record_stock_changed
from inventory.models import StockItem, StockMovement
from inventory.services.counters import stock_lock_item, stock_lock_or_create_item

log = get_logger(__name__)

# The counters are PostgreSQL `integer` columns, so a larger count would fail in the database.
MAX_ON_HAND = 2**31 - 1


def stock_set_on_hand(*, sku: str, on_hand: int, reason: str, actor: str) -> bool:
    """Set the on-hand count of `sku` to `on_hand`, writing the difference to the ledger.

    Returns True when the count changed. Raises DomainError for a negative count
    and ConflictError when the new count would fall below the units reserved.

    NOTE: the row lock lasts until the caller's transaction ends. A caller that
    sets several SKUs in one transaction must do so in ascending SKU order, or
    it can deadlock with a multi-line reservation of the same SKUs.
    """
    if on_hand < 0:
        raise DomainError(
            "invalid_quantity",
            f"On-hand quantity for {sku} must not be negative, got {on_hand}.",
            field="on_hand",
        )

    with transaction.atomic():
        item, created = stock_lock_or_create_item(sku=sku)
        delta = on_hand - item.on_hand
        if delta == 0:
            return False

        if on_hand < item.reserved:
            raise ConflictError(
                "stock_below_reserved",
                f"Cannot set {sku} to {on_hand} on hand: {item.reserved} units are reserved.",
                extra={"sku": sku, "on_hand": item.on_hand, "reserved": item.reserved, "requested": on_hand},
            )

        kind = StockMovement.Kind.RECEIPT if created else StockMovement.Kind.ADJUSTMENT
        _apply_on_hand_change(item=item, kind=kind, quantity=delta, reason=reason, actor=actor)

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
        movements = StockMovement.objects.bulk_create(
            [
                StockMovement(
                    sku=sku, kind=StockMovement.Kind.RECEIPT, quantity=quantity, reason=reason, actor=actor
                )
                for sku, quantity in new_levels.items()
                if quantity != 0
            ],
            batch_size=batch_size,
        )
        record_stock_changed(movements)
    return len(new_levels)


def receive(*, sku: str, quantity: int, reason: str, actor: str) -> StockItem:
    """Add `quantity` received units to `sku`, creating its stock row when it has none.

    Raises DomainError `invalid_quantity` unless `quantity` is a positive
    integer, `invalid_reason` for a blank reason, and ConflictError
    `on_hand_too_large` when the count would exceed MAX_ON_HAND.
    """
    return _add_units(sku=sku, quantity=quantity, kind=StockMovement.Kind.RECEIPT, reason=reason, actor=actor)


def restock(*, sku: str, quantity: int, reason: str, actor: str) -> StockItem:
    """Put `quantity` returned units of `sku` back on hand, as a `return` ledger row.

    Raises the same errors as `receive`.
    """
    return _add_units(sku=sku, quantity=quantity, kind=StockMovement.Kind.RETURN, reason=reason, actor=actor)


def adjust(*, sku: str, delta: int, reason: str, actor: str) -> StockItem:
    """Change the on-hand count of an existing `sku` by `delta` (a stock count correction).

    Raises DomainError `invalid_delta` for a zero or non-integer delta,
    NotFoundError `sku_not_found` for a SKU without a stock row, and
    ConflictError `on_hand_negative` or `stock_below_reserved` when the new
    count would drop below zero or below the reserved units, and
    `on_hand_too_large` above MAX_ON_HAND. Nothing is written when it raises.
    """
    if isinstance(delta, bool) or not isinstance(delta, int) or delta == 0:
        raise DomainError(
            "invalid_delta",
            f"Delta for {sku} must be a non-zero integer, got {delta!r}.",
            field="delta",
        )
    _require_reason(reason)

    with transaction.atomic():
        item = stock_lock_item(sku=sku)
        if item is None:
            raise NotFoundError(f"No stock item with SKU {sku!r}.", code="sku_not_found", field="sku")

        new_on_hand = item.on_hand + delta
        numbers = {
            "sku": sku,
            "delta": delta,
            "on_hand": item.on_hand,
            "reserved": item.reserved,
            "available": item.available,
        }
        if new_on_hand < 0:
            raise ConflictError(
                "on_hand_negative",
                f"Cannot change {sku} by {delta}: only {item.on_hand} units are on hand.",
                hint="Use a delta of at least minus the on-hand count.",
                extra=numbers,
            )
        if new_on_hand < item.reserved:
            raise ConflictError(
                "stock_below_reserved",
                f"Cannot change {sku} by {delta}: {item.reserved} of its {item.on_hand} units are reserved.",
                hint="Release or commit reservations first, or use a delta of at least minus the available units.",
                extra=numbers,
            )

        _require_within_limit(item=item, quantity=delta)
        _apply_on_hand_change(item=item, kind=StockMovement.Kind.ADJUSTMENT, quantity=delta, reason=reason, actor=actor)

    log.info("stock_adjusted", sku=sku, delta=delta, on_hand=item.on_hand, reason=reason, actor=actor)
    return item


def _add_units(*, sku: str, quantity: int, kind: str, reason: str, actor: str) -> StockItem:
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity <= 0:
        raise DomainError(
            "invalid_quantity",
            f"Quantity for {sku} must be a positive integer, got {quantity!r}.",
            field="quantity",
        )
    _require_reason(reason)

    with transaction.atomic():
        item, _created = stock_lock_or_create_item(sku=sku)
        _require_within_limit(item=item, quantity=quantity)
        _apply_on_hand_change(item=item, kind=kind, quantity=quantity, reason=reason, actor=actor)

    log.info("stock_added", sku=sku, kind=kind, quantity=quantity, on_hand=item.on_hand, reason=reason, actor=actor)
    return item


def _apply_on_hand_change(*, item: StockItem, kind: str, quantity: int, reason: str, actor: str) -> None:
    # The caller holds the row lock, so the counter and its ledger row change together.
    item.on_hand += quantity
    item.save(update_fields=["on_hand", "updated_at"])
    movement = StockMovement.objects.create(sku=item.sku, kind=kind, quantity=quantity, reason=reason, actor=actor)
    record_stock_changed([movement])


def _require_within_limit(*, item: StockItem, quantity: int) -> None:
    if item.on_hand + quantity > MAX_ON_HAND:
        raise ConflictError(
            "on_hand_too_large",
            f"Cannot add {quantity} units to {item.sku}: on hand would exceed {MAX_ON_HAND}.",
            extra={"sku": item.sku, "on_hand": item.on_hand, "quantity": quantity, "max_on_hand": MAX_ON_HAND},
        )


def _require_reason(reason: str) -> None:
    if not isinstance(reason, str) or not reason.strip():
        raise DomainError("invalid_reason", "A reason is required for every stock change.", field="reason")

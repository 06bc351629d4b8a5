"""Inventory events for the transactional outbox: stock.changed and reservation.*.

Stock events use the ledger row's id as the aggregate version. Changes to one
SKU happen under its row lock, so a later change always gets a larger id:
monotonic per SKU, though not gap-free. Reservations are versioned 1 when
made and 2 when they end (committed, released or expired), their only move.
"""
from __future__ import annotations

from collections.abc import Iterable

from commerce.outbox import outbox_write_many
from inventory.models import Reservation, StockItem, StockMovement

RESERVATION_EVENTS = {
    "reservation_created": ("reservation.made", 1),
    "reservation_committed": ("reservation.committed", 2),
    "reservation_released": ("reservation.released", 2),
    "reservation_expired": ("reservation.expired", 2),
}


def record_stock_changed(movements: Iterable[StockMovement]) -> None:
    """Write one stock.changed event per ledger row, with the SKU's counters after the change.

    Runs in the transaction that wrote the ledger rows, which still holds their stock rows' locks.
    """
    movements = [movement for movement in movements if movement.pk is not None]
    if not movements:
        return
    counters = {
        sku: (on_hand, reserved)
        for sku, on_hand, reserved in StockItem.objects.filter(
            sku__in={movement.sku for movement in movements}
        ).values_list("sku", "on_hand", "reserved")
    }
    events = []
    for movement in movements:
        on_hand, reserved = counters.get(movement.sku, (0, 0))
        events.append(
            {
                "event_type": "stock.changed",
                "aggregate_type": "stock",
                "aggregate_id": movement.sku,
                "aggregate_version": movement.pk,
                "payload": {
                    "sku": movement.sku,
                    "movement_id": movement.pk,
                    "kind": movement.kind,
                    "quantity": movement.quantity,
                    "on_hand": on_hand,
                    "reserved": reserved,
                    "available": on_hand - reserved,
                },
            }
        )
    outbox_write_many(events)


def record_reservation_event(reservation: Reservation, *, event: str) -> None:
    """Write the reservation.* event matching an internal transition name, in the caller's transaction."""
    event_type, version = RESERVATION_EVENTS[event]
    lines = list(reservation.lines.order_by("sku").values_list("sku", "quantity"))
    outbox_write_many(
        [
            {
                "event_type": event_type,
                "aggregate_type": "reservation",
                "aggregate_id": str(reservation.pk),
                "aggregate_version": version,
                "payload": {
                    "reservation_id": reservation.pk,
                    "reference": reservation.reference,
                    "status": reservation.status,
                    "expires_at": reservation.expires_at.isoformat(),
                    "lines": [{"sku": sku, "quantity": quantity} for sku, quantity in lines],
                },
            }
        ]
    )

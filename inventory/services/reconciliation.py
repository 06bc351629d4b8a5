"""Reconciliation: find stock counters that drifted from the ledger and the reservations, and repair them.

The ledger and the reservations are the truth. A repair sets `on_hand` to the
ledger's sum and `reserved` to the active reservations' sum, and records the
old and new values in a zero-quantity `reconciliation` ledger row, so the
ledger's sum stays equal to `on_hand` afterwards.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone

from commerce.logging import get_logger
from inventory.events import record_stock_changed
from inventory.models import StockItem, StockMovement
from inventory.selectors import StockDrift, stock_drift
from inventory.services.counters import stock_lock_or_create_item

log = get_logger(__name__)


@dataclass
class ReconciliationResult:
    """Drift found by one reconciliation run and the SKUs it repaired."""

    drift: list[StockDrift]
    fixed: list[str] = field(default_factory=list)

    @property
    def unfixed(self) -> list[StockDrift]:
        fixed = set(self.fixed)
        return [drift for drift in self.drift if drift.sku not in fixed]

    def as_dict(self) -> dict[str, Any]:
        fixed = set(self.fixed)
        return {
            "drift_count": len(self.drift),
            "fixed_count": len(self.fixed),
            "unfixed_count": len(self.unfixed),
            "skus": [{**drift.as_dict(), "fixed": drift.sku in fixed} for drift in self.drift],
        }


def reconcile(*, fix: bool, actor: str) -> ReconciliationResult:
    """Compare every SKU's counters with the ledger and the active reservations, and repair them when `fix` is set.

    Drift whose expected counters would break the CHECK constraint (more
    units reserved than the ledger has on hand) is reported but never
    repaired. Each repair is its own transaction.
    """
    result = ReconciliationResult(drift=stock_drift())
    if not fix:
        return result

    for drift in result.drift:
        if not drift.fixable:
            log.error("stock_drift_unfixable", **drift.as_dict())
            continue
        if _repair(sku=drift.sku, actor=actor):
            result.fixed.append(drift.sku)
    return result


def _repair(*, sku: str, actor: str) -> bool:
    """Repair the counters of `sku` under its row lock and return whether no drift remains."""
    with transaction.atomic():
        item, _created = stock_lock_or_create_item(sku=sku)
        # Recompute under the lock: every service that changes these counters
        # updates this row in the same transaction as the ledger or the
        # reservation, so it is either visible already or waiting for the lock.
        current = stock_drift(skus=[sku])
        if not current:
            return True
        drift = current[0]
        if not drift.fixable:
            log.error("stock_drift_unfixable", **drift.as_dict())
            return False

        StockItem.objects.filter(pk=item.pk).update(
            on_hand=drift.expected_on_hand, reserved=drift.expected_reserved, updated_at=timezone.now()
        )
        repair = StockMovement.objects.create(
            sku=sku,
            kind=StockMovement.Kind.RECONCILIATION,
            quantity=0,
            reason=(
                f"reconciliation: on_hand {item.on_hand} -> {drift.expected_on_hand} (ledger sum), "
                f"reserved {item.reserved} -> {drift.expected_reserved} (active reservations)"
            ),
            actor=actor,
        )
        record_stock_changed([repair])

    log.warning(
        "stock_counters_repaired",
        sku=sku,
        on_hand_before=item.on_hand,
        on_hand_after=drift.expected_on_hand,
        reserved_before=item.reserved,
        reserved_after=drift.expected_reserved,
        actor=actor,
    )
    return True

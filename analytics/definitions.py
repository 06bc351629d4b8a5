"""The definition of a committed order, shared by both sides of the reconciliation.

An order is committed once its payment was captured (it reached `paid`) and
for as long as its refunds have not reached its total. In states:

    committed:     paid, fulfilled, partially_refunded
    not committed: pending_payment, cancelled, expired, refunded

Its committed revenue is its total minus what was refunded so far, in the
order's currency. An order that is not committed contributes nothing.

reconcile_order_counts applies these functions to the orders database's
Order rows and to the projection's latest fact of each order, and
docs/analytics.md states the same rule in prose.
"""
from __future__ import annotations

from decimal import Decimal

from orders.models import OrderState

COMMITTED_STATES: frozenset[str] = frozenset({OrderState.PAID, OrderState.FULFILLED, OrderState.PARTIALLY_REFUNDED})


def is_committed(state: str) -> bool:
    return state in COMMITTED_STATES


def committed_revenue(*, state: str, total: Decimal, refunded_total: Decimal) -> Decimal:
    """Return total minus refunded_total for a committed order, and zero for any other."""
    if not is_committed(state):
        return Decimal("0.00")
    return total - refunded_total

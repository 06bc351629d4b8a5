"""Order state transitions with their history, events and side effects in one transaction.

A transition locks nothing up front: ConcurrentTransitionMixin turns the save
into `UPDATE ... WHERE state = <state read>`, so the loser of two concurrent
transitions fails, rolls back, and leaves no history row, event or stock
change behind.
"""
from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.utils import timezone
from django_fsm import ConcurrentTransition, can_proceed

from commerce.errors import ConflictError, NotFoundError
from commerce.logging import get_logger
from commerce.outbox import outbox_write
from inventory import services as inventory
from orders.models import Order, OrderState, OrderTransition

log = get_logger(__name__)

EVENT_TYPES = {
    OrderState.PAID: "order.paid",
    OrderState.FULFILLED: "order.fulfilled",
    OrderState.CANCELLED: "order.cancelled",
    OrderState.EXPIRED: "order.expired",
    OrderState.PARTIALLY_REFUNDED: "order.refunded",
    OrderState.REFUNDED: "order.refunded",
}


def order_lock(*, order_id: uuid.UUID | str) -> Order:
    """Lock and return the order row; callers use it to serialize work on one order (payment start, refunds)."""
    order = Order.objects.select_for_update().filter(pk=order_id).first()
    if order is None:
        raise NotFoundError(f"No order {order_id}.", code="order_not_found")
    return order


def _apply(
    order: Order,
    move: Callable[[], None],
    *,
    actor: str,
    reason: str,
    side_effect: Callable[[], None] | None = None,
    payload: dict | None = None,
) -> Order:
    if not can_proceed(move):
        raise ConflictError(
            "illegal_transition",
            f"Order {order.pk} is {order.state}; {move.__name__} is not allowed from that state.",
            extra={"order_id": str(order.pk), "state": order.state, "transition": move.__name__},
        )

    from_state = order.state
    move()
    order.version += 1
    try:
        order.save()
    except ConcurrentTransition:
        raise ConflictError(
            "concurrent_transition",
            f"Order {order.pk} changed state while this request ran.",
            extra={"order_id": str(order.pk)},
            hint="Fetch the order and retry if the action still applies.",
        ) from None

    OrderTransition.objects.create(order=order, from_state=from_state, to_state=order.state, actor=actor, reason=reason)
    if side_effect is not None:
        side_effect()
    outbox_write(
        event_type=EVENT_TYPES[order.state],
        aggregate_type="order",
        aggregate_id=str(order.pk),
        aggregate_version=order.version,
        payload={
            "order_id": str(order.pk),
            "state": order.state,
            "previous_state": from_state,
            "total": order.total,
            "refunded_total": order.refunded_total,
            "currency": order.currency,
            **(payload or {}),
        },
    )
    log.info("order_transitioned", order_id=str(order.pk), from_state=from_state, to_state=order.state, actor=actor)
    return order


def _get(order_id: uuid.UUID | str) -> Order:
    order = Order.objects.filter(pk=order_id).first()
    if order is None:
        raise NotFoundError(f"No order {order_id}.", code="order_not_found")
    return order


PAID_STATES = (OrderState.PAID, OrderState.FULFILLED, OrderState.PARTIALLY_REFUNDED, OrderState.REFUNDED)


def order_mark_paid(*, order_id: uuid.UUID | str, payment_id: str, actor: str) -> Order:
    """Move the order to paid and commit its reservation, returning the order.

    A repeat for a paid order returns it unchanged. When the order was
    cancelled or expired first, or its reservation ended before the payment
    landed (the order then expires here), the returned order is not in a paid
    state and the caller must return the money.
    """
    with transaction.atomic():
        order = _get(order_id)
        if order.state in PAID_STATES or order.state != OrderState.PENDING_PAYMENT:
            return order
        try:
            with transaction.atomic():
                return _apply(
                    order,
                    order.pay,
                    actor=actor,
                    reason=f"payment {payment_id} captured",
                    side_effect=lambda: inventory.commit(reference=order.reservation_reference, actor=actor),
                    payload={"payment_id": payment_id},
                )
        except ConflictError as exc:
            if exc.code not in ("reservation_expired", "reservation_released"):
                raise
            # The stock was freed while the payment ran longer than the reservation's
            # grace period: the order cannot be fulfilled, so it expires and the caller refunds.
            log.warning("order_reservation_gone_at_payment", order_id=str(order.pk), code=exc.code)
            order.refresh_from_db()
            return _apply(order, order.expire, actor=actor, reason="reservation ended before payment")


def order_cancel(*, order_id: uuid.UUID | str, actor: str, reason: str) -> Order:
    """Cancel an unpaid order and release its reservation.

    Raises ConflictError payment_in_progress while a capture is running, and
    illegal_transition for a paid order (refund it instead).
    """
    from payments.selectors import order_has_active_payment

    with transaction.atomic():
        # The row lock orders this check against a payment starting at the same moment.
        order = order_lock(order_id=order_id)
        if order.state == OrderState.PENDING_PAYMENT and order_has_active_payment(order_id=order.pk):
            raise ConflictError(
                "payment_in_progress",
                f"Order {order.pk} has a payment in progress and cannot be cancelled now.",
                extra={"order_id": str(order.pk), "state": order.state},
                retry_after=5,
            )
        return _apply(
            order,
            order.cancel,
            actor=actor,
            reason=reason,
            side_effect=lambda: inventory.release(reference=order.reservation_reference),
        )


def order_expire(*, order_id: uuid.UUID | str, actor: str = "system:expiry") -> Order:
    """Expire an unpaid order whose payment window closed, releasing its reservation."""
    with transaction.atomic():
        order = _get(order_id)
        return _apply(
            order,
            order.expire,
            actor=actor,
            reason="payment window closed",
            side_effect=lambda: inventory.release(reference=order.reservation_reference),
        )


def order_expire_overdue(*, now: datetime | None = None, batch_size: int = 100) -> int:
    """Expire pending orders past their payment deadline that have no payment in progress; return how many."""
    from payments.selectors import orders_with_active_payment

    now = now or timezone.now()
    with transaction.atomic():
        # SKIP LOCKED: an order being paid or cancelled right now is left for the next sweep.
        overdue = list(
            Order.objects.select_for_update(skip_locked=True)
            .filter(state=OrderState.PENDING_PAYMENT, payment_due_at__lte=now)
            .order_by("payment_due_at")
            .values_list("pk", flat=True)[:batch_size]
        )
        busy = orders_with_active_payment(order_ids=overdue)
        expired = 0
        for order_id in overdue:
            if order_id in busy:
                continue
            order_expire(order_id=order_id)
            expired += 1
    if expired:
        log.info("orders_expired", count=expired)
    return expired


def order_fulfil(*, order_id: uuid.UUID | str, actor: str) -> Order:
    with transaction.atomic():
        order = _get(order_id)
        return _apply(order, order.fulfil, actor=actor, reason="shipped")


def order_record_refund(*, order_id: uuid.UUID | str, amount: Decimal, refund_id: str, actor: str) -> Order:
    """Add a completed refund to the order and move it to partially_refunded or refunded."""
    with transaction.atomic():
        order = order_lock(order_id=order_id)
        order.refunded_total += amount
        move = order.refund_fully if order.refunded_total >= order.total else order.refund_partially
        return _apply(
            order, move, actor=actor, reason=f"refund {refund_id}", payload={"refund_id": refund_id, "amount": amount}
        )

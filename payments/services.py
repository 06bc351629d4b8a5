"""Write side of payments: start a payment, apply captures, failures and refunds exactly once.

The Celery capture task, the provider's webhooks and the reconciliation job
all end in the same `payment_apply_*` functions. Each locks the intent row,
checks whether the work is already done, and relies on unique provider ids
(transaction, refund, event) so that a race between them records one capture.
No function here calls the provider while holding a row lock.
"""
from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from django.db import transaction

from commerce.errors import ConflictError, DomainError, NotFoundError
from commerce.logging import get_logger
from commerce.outbox import outbox_write
from inventory import services as inventory
from orders.models import OrderState
from orders.services import PAID_STATES, order_lock, order_mark_paid, order_record_refund
from payments.models import Capture, PaymentIntent, Refund

log = get_logger(__name__)

REFUNDABLE_STATES = (OrderState.PAID, OrderState.PARTIALLY_REFUNDED)


def _payment_event(event_type: str, intent: PaymentIntent, **extra: Any) -> None:
    """Bump the intent's version and write the event, in the caller's transaction (which holds the row lock)."""
    intent.version += 1
    intent.save(update_fields=["version", "updated_at"])
    outbox_write(
        event_type=event_type,
        aggregate_type="payment",
        aggregate_id=str(intent.pk),
        aggregate_version=intent.version,
        payload={
            "payment_id": str(intent.pk),
            "order_id": str(intent.order_id),
            "amount": intent.amount,
            "currency": intent.currency,
            "status": intent.status,
            **extra,
        },
    )


def payment_start(*, order_id: uuid.UUID | str, actor: str) -> PaymentIntent:
    """Create a processing payment intent for an unpaid order and queue its capture after commit.

    Raises ConflictError order_not_payable (wrong state) or payment_in_progress
    (another intent is processing or succeeded).
    """
    from payments.tasks import capture_payment

    with transaction.atomic():
        order = order_lock(order_id=order_id)
        if order.state != OrderState.PENDING_PAYMENT:
            raise ConflictError(
                "order_not_payable",
                f"Order {order.pk} is {order.state} and cannot be paid.",
                extra={"order_id": str(order.pk), "state": order.state},
            )
        active = PaymentIntent.objects.filter(
            order_id=order.pk, status__in=[PaymentIntent.Status.PROCESSING, PaymentIntent.Status.SUCCEEDED]
        ).first()
        if active is not None:
            raise ConflictError(
                "payment_in_progress",
                f"Order {order.pk} already has payment {active.pk} ({active.status}).",
                extra={"order_id": str(order.pk), "payment_id": str(active.pk), "payment_status": active.status},
                hint="Poll the order until it is paid or the payment fails.",
                retry_after=2,
            )

        intent = PaymentIntent.objects.create(order_id=order.pk, amount=order.total, currency=order.currency)
        # Bound argument, not a closure over a loop variable; runs only if this transaction commits.
        intent_id = str(intent.pk)
        transaction.on_commit(lambda: capture_payment.delay(intent_id))

    log.info("payment_started", payment_id=str(intent.pk), order_id=str(order.pk), actor=actor)
    return intent


def payment_record_provider_intent(*, intent_id: uuid.UUID | str, provider_intent_id: str) -> None:
    """Remember the provider's intent id the first time we learn it."""
    PaymentIntent.objects.filter(pk=intent_id, provider_intent_id__isnull=True).update(
        provider_intent_id=provider_intent_id
    )


def payment_apply_capture(
    *, intent_id: uuid.UUID | str, provider_transaction_id: str, amount: Decimal, source: str
) -> bool:
    """Record a capture the provider confirmed and mark the order paid; return False when already recorded.

    When the order was cancelled or expired before the capture landed, the
    money is returned: the intent is flagged and a refund is queued.
    """
    from payments.tasks import refund_payment

    with transaction.atomic():
        intent = PaymentIntent.objects.select_for_update().filter(pk=intent_id).first()
        if intent is None:
            raise NotFoundError(f"No payment {intent_id}.", code="payment_not_found")
        if Capture.objects.filter(intent=intent).exists():
            log.info("capture_already_recorded", payment_id=str(intent.pk), source=source)
            return False

        Capture.objects.create(
            intent=intent,
            order_id=intent.order_id,
            provider_transaction_id=provider_transaction_id,
            amount=amount,
            currency=intent.currency,
            source=source,
        )
        intent.status = PaymentIntent.Status.SUCCEEDED
        intent.failure_code = ""
        intent.save(update_fields=["status", "failure_code", "updated_at"])
        _payment_event("payment.captured", intent, provider_transaction_id=provider_transaction_id)

        order = order_mark_paid(order_id=intent.order_id, payment_id=str(intent.pk), actor=f"payments:{source}")
        if order.state not in PAID_STATES:
            # The order closed (cancelled, expired, or its stock was freed) before the
            # capture landed: keep the capture on record and give the money back.
            intent.needs_refund = True
            intent.save(update_fields=["needs_refund", "updated_at"])
            refund = Refund.objects.create(
                intent=intent,
                order_id=intent.order_id,
                amount=amount,
                currency=intent.currency,
                reason=f"captured after the order was {order.state}",
                updates_order=False,
            )
            refund_id = str(refund.pk)
            transaction.on_commit(lambda: refund_payment.delay(refund_id))
            log.warning(
                "capture_for_closed_order_refunding",
                payment_id=str(intent.pk),
                order_id=str(intent.order_id),
                order_state=order.state,
                refund_id=refund_id,
            )

    log.info("capture_recorded", payment_id=str(intent.pk), order_id=str(intent.order_id), source=source)
    return True


def payment_apply_failure(*, intent_id: uuid.UUID | str, code: str, source: str) -> bool:
    """Mark a processing intent failed; return False for a stale failure (the intent already succeeded or failed)."""
    with transaction.atomic():
        intent = PaymentIntent.objects.select_for_update().filter(pk=intent_id).first()
        if intent is None:
            raise NotFoundError(f"No payment {intent_id}.", code="payment_not_found")
        if intent.status != PaymentIntent.Status.PROCESSING:
            log.info("stale_failure_ignored", payment_id=str(intent.pk), status=intent.status, source=source)
            return False
        intent.status = PaymentIntent.Status.FAILED
        intent.failure_code = code[:64]
        intent.save(update_fields=["status", "failure_code", "updated_at"])
        _payment_event("payment.failed", intent, failure_code=intent.failure_code)
    log.info("payment_failed", payment_id=str(intent.pk), order_id=str(intent.order_id), code=code, source=source)
    return True


def _validate_restock(lines: list[dict[str, Any]], ordered: dict[str, int]) -> list[dict[str, Any]]:
    cleaned = []
    for index, line in enumerate(lines):
        sku, quantity = line.get("sku"), line.get("quantity")
        if sku not in ordered:
            raise DomainError("invalid_restock", f"SKU {sku!r} is not in this order.", field=f"restock[{index}].sku")
        if not isinstance(quantity, int) or isinstance(quantity, bool) or not 1 <= quantity <= ordered[sku]:
            raise DomainError(
                "invalid_restock",
                f"Restock quantity for {sku} must be 1 to {ordered[sku]}, got {quantity!r}.",
                field=f"restock[{index}].quantity",
            )
        cleaned.append({"sku": sku, "quantity": quantity})
    return cleaned


def refund_start(
    *, order_id: uuid.UUID | str, amount: Decimal, reason: str, restock: list[dict[str, Any]], actor: str
) -> Refund:
    """Queue a refund of `amount` for a paid order; the total refunded can never exceed the capture."""
    from payments.tasks import refund_payment

    with transaction.atomic():
        order = order_lock(order_id=order_id)
        if order.state not in REFUNDABLE_STATES:
            raise ConflictError(
                "order_not_refundable",
                f"Order {order.pk} is {order.state}; only paid orders can be refunded.",
                extra={"order_id": str(order.pk), "state": order.state},
            )
        capture = Capture.objects.select_related("intent").filter(order_id=order.pk).first()
        if capture is None:
            raise ConflictError("order_not_refundable", f"Order {order.pk} has no capture to refund.")

        committed = sum(
            Refund.objects.filter(intent=capture.intent)
            .exclude(status=Refund.Status.FAILED)
            .values_list("amount", flat=True),
            Decimal("0.00"),
        )
        remaining = capture.amount - committed
        if amount <= 0 or amount > remaining:
            raise DomainError(
                "refund_amount_invalid",
                f"Refund amount must be more than 0 and at most {remaining} {capture.currency}, got {amount}.",
                field="amount",
                extra={"refundable": remaining, "currency": capture.currency},
            )

        ordered = {line.sku: line.quantity for line in order.lines.all()}
        refund = Refund.objects.create(
            intent=capture.intent,
            order_id=order.pk,
            amount=amount,
            currency=capture.currency,
            reason=reason[:255],
            restock=_validate_restock(restock, ordered),
        )
        refund_id = str(refund.pk)
        transaction.on_commit(lambda: refund_payment.delay(refund_id))

    log.info("refund_started", refund_id=refund_id, order_id=str(order.pk), amount=str(amount), actor=actor)
    return refund


def refund_apply_success(*, refund_id: uuid.UUID | str, provider_refund_id: str, source: str) -> bool:
    """Record a refund the provider confirmed, update the order and restock; False when already recorded."""
    with transaction.atomic():
        refund = Refund.objects.select_for_update().filter(pk=refund_id).first()
        if refund is None:
            raise NotFoundError(f"No refund {refund_id}.", code="refund_not_found")
        if refund.status == Refund.Status.SUCCEEDED:
            return False

        refund.status = Refund.Status.SUCCEEDED
        refund.provider_refund_id = provider_refund_id
        refund.save(update_fields=["status", "provider_refund_id", "updated_at"])
        if refund.updates_order:
            order_record_refund(
                order_id=refund.order_id, amount=refund.amount, refund_id=str(refund.pk), actor=f"payments:{source}"
            )
        for line in refund.restock:
            inventory.restock(
                sku=line["sku"],
                quantity=line["quantity"],
                reason=f"returned with refund {refund.pk}",
                actor=f"payments:{source}",
            )
        intent = PaymentIntent.objects.select_for_update().get(pk=refund.intent_id)
        _payment_event("payment.refunded", intent, refund_id=str(refund.pk), refund_amount=refund.amount)

    log.info("refund_recorded", refund_id=str(refund.pk), order_id=str(refund.order_id), source=source)
    return True


def refund_apply_failure(*, refund_id: uuid.UUID | str, code: str) -> None:
    with transaction.atomic():
        updated = Refund.objects.filter(pk=refund_id, status=Refund.Status.PENDING).update(
            status=Refund.Status.FAILED, failure_code=code[:64]
        )
    if updated:
        log.warning("refund_failed", refund_id=str(refund_id), code=code)

"""Apply provider webhook events: verified, deduplicated by event id, never moving a payment backwards.

Deliveries are at-least-once and may arrive in any order. The event id is
recorded in the same transaction as its effect; a concurrent duplicate waits
on that row's unique index and then finds it. Stale events (a failure after a
success, a "created" after the capture) are acknowledged and logged, not
applied, because the provider would otherwise retry them forever.
"""
from __future__ import annotations

import uuid
from typing import Any

from django.db import IntegrityError, transaction

from commerce.errors import DomainError
from commerce.logging import get_logger
from payments.models import PaymentIntent, ProcessedWebhook, Refund
from payments.money import from_minor_units
from payments.services import payment_apply_capture, payment_apply_failure, payment_record_provider_intent

log = get_logger(__name__)


def _event_fields(event: Any) -> tuple[str, str, dict]:
    if not isinstance(event, dict):
        raise DomainError("invalid_webhook", "The webhook body must be a JSON object.")
    event_id, event_type = event.get("id"), event.get("type")
    data = event.get("data") if isinstance(event.get("data"), dict) else {}
    obj = data.get("object")
    if not isinstance(event_id, str) or not event_id or not isinstance(event_type, str) or not isinstance(obj, dict):
        raise DomainError("invalid_webhook", "The webhook needs string id and type and a data.object.")
    return event_id, event_type, obj


def _find_intent(obj: dict) -> PaymentIntent | None:
    reference = obj.get("merchant_reference")
    try:
        intent_id = uuid.UUID(str(reference))
    except ValueError:
        return None
    return PaymentIntent.objects.filter(pk=intent_id).first()


def webhook_apply(event: Any) -> str:
    """Apply one verified provider event and return its outcome (applied, duplicate, stale, ignored, unknown_payment)."""
    event_id, event_type, obj = _event_fields(event)

    with transaction.atomic():
        try:
            with transaction.atomic():
                record = ProcessedWebhook.objects.create(provider_event_id=event_id, event_type=event_type, outcome="")
        except IntegrityError:
            log.info("webhook_duplicate", event_id=event_id, event_type=event_type)
            return "duplicate"

        outcome = _dispatch(event_type, obj)
        record.outcome = outcome
        record.save(update_fields=["outcome"])

    log.info("webhook_processed", event_id=event_id, event_type=event_type, outcome=outcome)
    return outcome


def _dispatch(event_type: str, obj: dict) -> str:
    intent = _find_intent(obj)
    if intent is None:
        log.warning("webhook_unknown_payment", merchant_reference=str(obj.get("merchant_reference"))[:64])
        return "unknown_payment"

    provider_intent_id = obj.get("id")
    if isinstance(provider_intent_id, str) and provider_intent_id:
        payment_record_provider_intent(intent_id=intent.pk, provider_intent_id=provider_intent_id)

    if event_type == "payment_intent.succeeded":
        transaction_id = obj.get("latest_charge")
        captured = obj.get("amount_captured")
        if not isinstance(transaction_id, str) or not isinstance(captured, int):
            raise DomainError("invalid_webhook", "payment_intent.succeeded needs latest_charge and amount_captured.")
        applied = payment_apply_capture(
            intent_id=intent.pk,
            provider_transaction_id=transaction_id,
            amount=from_minor_units(captured, intent.currency),
            source="webhook",
        )
        return "applied" if applied else "stale"

    if event_type == "payment_intent.payment_failed":
        error = obj.get("last_payment_error") or {}
        code = error.get("code") if isinstance(error, dict) else None
        applied = payment_apply_failure(intent_id=intent.pk, code=str(code or "payment_failed"), source="webhook")
        return "applied" if applied else "stale"

    if event_type == "charge.refunded":
        # The refund task records refunds from the provider's response; this event only
        # nudges refunds still pending (the task's repeat replays the provider's result).
        from payments.tasks import refund_payment

        pending = Refund.objects.filter(intent=intent, status=Refund.Status.PENDING).values_list("pk", flat=True)
        pending_ids = [str(refund_id) for refund_id in pending]
        for refund_id in pending_ids:
            # Default argument binds this iteration's id; a bare closure would see the last one.
            transaction.on_commit(lambda refund_id=refund_id: refund_payment.delay(refund_id))
        return "applied" if pending_ids else "stale"

    if event_type == "payment_intent.created":
        return "applied" if intent.status == PaymentIntent.Status.PROCESSING else "stale"

    return "ignored"



"""Celery entry points for payments: capture, refund and reconciliation.

Celery may deliver a task twice (acks_late plus the Redis visibility timeout),
and a worker may die between the provider's response and our commit. Every task
therefore starts by checking the entity's state, and every provider call
reuses an idempotency key derived from our own ids, so a repeat returns the
provider's saved result instead of charging again.
"""
from __future__ import annotations

from celery import shared_task

from commerce.logging import get_logger
from payments import gateway as gateway_module
from payments.models import PaymentIntent, Refund
from payments.money import from_minor_units, to_minor_units
from payments.services import (
    payment_apply_capture,
    payment_apply_failure,
    payment_record_provider_intent,
    refund_apply_failure,
    refund_apply_success,
)

log = get_logger(__name__)

RETRYABLE = (gateway_module.GatewayTimeout, gateway_module.GatewayUnavailable)
# Provider calls that timed out or failed retry 8 times with jittered backoff,
# from 2 s doubling to 60 s. Reconciliation settles what is left after that.
PROVIDER_RETRY_OPTIONS = {
    "autoretry_for": RETRYABLE,
    "retry_backoff": 2,
    "retry_backoff_max": 60,
    "retry_jitter": True,
    "max_retries": 8,
}


@shared_task(
    name="payments.tasks.capture_payment",
    bind=True,
    **PROVIDER_RETRY_OPTIONS,
)
def capture_payment(self, intent_id: str) -> str:
    """Create the provider intent if needed, capture it, and record the outcome.

    Timeouts and provider errors retry with backoff; after the last retry the
    intent stays processing and reconcile_payments settles it with the provider.
    """
    intent = PaymentIntent.objects.filter(pk=intent_id).first()
    if intent is None or intent.status != PaymentIntent.Status.PROCESSING:
        log.info("capture_skipped", payment_id=intent_id, status=getattr(intent, "status", None))
        return "skipped"

    PaymentIntent.objects.filter(pk=intent_id).update(attempts=intent.attempts + 1)
    if self.request.retries:
        log.info("capture_retrying", payment_id=intent_id, retry=self.request.retries)

    gateway = gateway_module.get_gateway()
    provider_intent_id = intent.provider_intent_id
    if provider_intent_id is None:
        provider_intent = gateway.create_intent(
            amount_minor=to_minor_units(intent.amount, intent.currency),
            currency=intent.currency,
            merchant_reference=str(intent.pk),
            idempotency_key=f"{intent.provider_idempotency_prefix}-create",
        )
        provider_intent_id = provider_intent.id
        payment_record_provider_intent(intent_id=intent.pk, provider_intent_id=provider_intent_id)

    try:
        result = gateway.capture(
            provider_intent_id=provider_intent_id, idempotency_key=f"{intent.provider_idempotency_prefix}-capture"
        )
    except gateway_module.PaymentDeclined as exc:
        payment_apply_failure(intent_id=intent.pk, code=exc.code, source="task")
        return "declined"
    except gateway_module.GatewayRejected as exc:
        if exc.code == "already_captured":
            # The capture went through on an earlier attempt: fetch the truth and record it.
            return _record_from_provider(intent, gateway, provider_intent_id)
        log.error("capture_rejected", payment_id=intent_id, code=exc.code, error=str(exc))
        payment_apply_failure(intent_id=intent.pk, code=exc.code, source="task")
        return "rejected"

    payment_apply_capture(
        intent_id=intent.pk,
        provider_transaction_id=result.transaction_id,
        amount=from_minor_units(result.amount_captured_minor, intent.currency),
        source="task",
    )
    return "captured"


def _record_from_provider(intent: PaymentIntent, gateway, provider_intent_id: str) -> str:
    provider_intent = gateway.get_intent(provider_intent_id=provider_intent_id)
    if provider_intent.status != "succeeded" or not provider_intent.transaction_id:
        log.warning("capture_state_unclear", payment_id=str(intent.pk), provider_status=provider_intent.status)
        return "unclear"
    payment_apply_capture(
        intent_id=intent.pk,
        provider_transaction_id=provider_intent.transaction_id,
        amount=from_minor_units(provider_intent.amount_captured_minor, intent.currency),
        source="task",
    )
    return "captured"


@shared_task(
    name="payments.tasks.refund_payment",
    bind=True,
    **PROVIDER_RETRY_OPTIONS,
)
def refund_payment(self, refund_id: str) -> str:
    """Send a pending refund to the provider and record the outcome."""
    refund = Refund.objects.select_related("intent").filter(pk=refund_id).first()
    if refund is None or refund.status != Refund.Status.PENDING:
        log.info("refund_skipped", refund_id=refund_id, status=getattr(refund, "status", None))
        return "skipped"
    if self.request.retries:
        log.info("refund_retrying", refund_id=refund_id, retry=self.request.retries)

    gateway = gateway_module.get_gateway()
    try:
        provider_refund = gateway.refund(
            provider_intent_id=refund.intent.provider_intent_id,
            amount_minor=to_minor_units(refund.amount, refund.currency),
            idempotency_key=f"refund-{refund.pk}",
        )
    except gateway_module.GatewayRejected as exc:
        log.error("refund_rejected", refund_id=refund_id, code=exc.code, error=str(exc))
        refund_apply_failure(refund_id=refund.pk, code=exc.code)
        return "rejected"

    refund_apply_success(refund_id=refund.pk, provider_refund_id=provider_refund.id, source="task")
    return "refunded"


@shared_task(name="payments.tasks.reconcile_payments")
def reconcile_payments_task() -> dict:
    """Periodic: settle payments and refunds stuck in flight by asking the provider."""
    from payments.reconciliation import reconcile_payments

    report = reconcile_payments()
    log.info("payments_reconciled", **report.counts())
    return report.counts()

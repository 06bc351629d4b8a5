"""Settle payments and refunds that are stuck in flight by asking the provider for the truth.

Runs from Celery beat and as `python manage.py reconcile_payments`. It covers
what retries cannot: a capture task that gave up after timeouts whose capture
went through, a worker that died after the provider responded, and webhooks
that never arrived.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from commerce.logging import get_logger
from payments import gateway as gateway_module
from payments.models import PaymentIntent, Refund
from payments.money import from_minor_units
from payments.services import payment_apply_capture, payment_apply_failure, payment_record_provider_intent

log = get_logger(__name__)


@dataclass
class ReconcileReport:
    captured: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    requeued: list[str] = field(default_factory=list)
    refunds_requeued: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {name: len(getattr(self, name)) for name in self.__dataclass_fields__}


def reconcile_payments(*, older_than_seconds: float | None = None) -> ReconcileReport:
    """Compare every payment processing for longer than `older_than_seconds` with the provider and repair it."""
    from payments.tasks import capture_payment, refund_payment

    older_than = older_than_seconds if older_than_seconds is not None else settings.PAYMENT_RECONCILE_AFTER_SECONDS
    cutoff = timezone.now() - timedelta(seconds=older_than)
    give_up_before = timezone.now() - timedelta(seconds=settings.PAYMENT_ABANDON_AFTER_SECONDS)
    report = ReconcileReport()
    gateway = gateway_module.get_gateway()

    stuck = PaymentIntent.objects.filter(status=PaymentIntent.Status.PROCESSING, updated_at__lte=cutoff)
    for intent in stuck.order_by("created_at"):
        payment_id = str(intent.pk)
        try:
            found = gateway.find_intents(merchant_reference=payment_id)
        except (gateway_module.GatewayTimeout, gateway_module.GatewayUnavailable) as exc:
            log.warning("reconcile_provider_unreachable", payment_id=payment_id, error=str(exc))
            report.errors.append(payment_id)
            continue

        if not found:
            if intent.created_at <= give_up_before:
                # The provider never saw it: no money moved, so failing it lets the shopper pay again.
                payment_apply_failure(intent_id=intent.pk, code="provider_has_no_record", source="reconcile")
                report.failed.append(payment_id)
            else:
                capture_payment.delay(payment_id)
                report.requeued.append(payment_id)
            continue

        provider_intent = found[0]
        payment_record_provider_intent(intent_id=intent.pk, provider_intent_id=provider_intent.id)
        if provider_intent.status == "succeeded" and provider_intent.transaction_id:
            payment_apply_capture(
                intent_id=intent.pk,
                provider_transaction_id=provider_intent.transaction_id,
                amount=from_minor_units(provider_intent.amount_captured_minor, intent.currency),
                source="reconcile",
            )
            report.captured.append(payment_id)
        elif provider_intent.status in ("failed", "canceled"):
            payment_apply_failure(intent_id=intent.pk, code=f"provider_{provider_intent.status}", source="reconcile")
            report.failed.append(payment_id)
        else:
            # Created but never captured: the capture task's key makes a repeat safe.
            capture_payment.delay(payment_id)
            report.requeued.append(payment_id)

    for refund_id in Refund.objects.filter(status=Refund.Status.PENDING, updated_at__lte=cutoff).values_list("pk", flat=True):
        refund_payment.delay(str(refund_id))
        report.refunds_requeued.append(str(refund_id))

    return report

"""Payment tables: intents, captures, refunds and processed provider webhooks.

At most one capture per order is enforced by PostgreSQL itself (a unique
order id on Capture), and at most one intent per order can be in flight (a
partial unique index), whatever clients, workers or webhooks do.
"""
import uuid

from django.db import models
from django.db.models import Q


class PaymentIntent(models.Model):
    class Status(models.TextChoices):
        PROCESSING = "processing"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    order_id = models.UUIDField(db_index=True)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PROCESSING)
    provider_intent_id = models.CharField(max_length=64, null=True, blank=True, unique=True)
    failure_code = models.CharField(max_length=64, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    # Set when the capture landed after the order was cancelled or expired: the money goes back.
    needs_refund = models.BooleanField(default=False)
    # Bumped on every recorded change; payment events carry it as the aggregate version.
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["order_id"],
                condition=Q(status__in=["processing", "succeeded"]),
                name="payment_one_active_intent_per_order",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.id} ({self.status})"

    @property
    def provider_idempotency_prefix(self) -> str:
        # Derived from our id, so every retry of one step reuses the provider's saved result.
        return f"intent-{self.id}"


class Capture(models.Model):
    intent = models.OneToOneField(PaymentIntent, on_delete=models.PROTECT, related_name="capture")
    order_id = models.UUIDField(unique=True)
    provider_transaction_id = models.CharField(max_length=64, unique=True)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3)
    source = models.CharField(max_length=16, help_text="What recorded it first: task, webhook or reconcile.")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.provider_transaction_id


class Refund(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    intent = models.ForeignKey(PaymentIntent, on_delete=models.PROTECT, related_name="refunds")
    order_id = models.UUIDField(db_index=True)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    reason = models.CharField(max_length=255, blank=True)
    # [{"sku": ..., "quantity": ...}] to put back on hand once the refund succeeds.
    restock = models.JSONField(default=list, blank=True)
    provider_refund_id = models.CharField(max_length=64, null=True, blank=True, unique=True)
    # False for automatic refunds of captures that landed on a cancelled or expired order.
    updates_order = models.BooleanField(default=True)
    failure_code = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(amount__gt=0), name="refund_amount_positive")]

    def __str__(self) -> str:
        return f"{self.id} ({self.status})"


class ProcessedWebhook(models.Model):
    """A provider event already applied; its id makes duplicate deliveries no-ops."""

    provider_event_id = models.CharField(max_length=64, unique=True)
    event_type = models.CharField(max_length=64)
    outcome = models.CharField(max_length=32)
    received_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.provider_event_id

"""Tables of the Kafka consumers: the deduplication record and the two consumers' outputs.

Dead letters have no table: the `<topic>.dlq` topic stores the original
message with the error in its headers, and a second copy in PostgreSQL could
disagree with it.
"""
from django.db import models


class ProcessedEvent(models.Model):
    """An event that one consumer has finished with, inserted in the transaction of the handler's writes.

    The row exists if and only if the handler's writes committed, so a
    redelivered event finds it and is skipped. Events skipped as stale by the
    aggregate-version hook get a row too.
    """

    consumer = models.CharField(max_length=64)
    event_id = models.UUIDField()
    event_type = models.CharField(max_length=64)
    processed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["consumer", "event_id"], name="processed_event_unique_per_consumer"),
        ]

    def __str__(self) -> str:
        return f"{self.consumer}: {self.event_type} {self.event_id}"


class Notification(models.Model):
    """A message to send to the customer about an order; only `pending` rows exist until a sender is built."""

    class Kind(models.TextChoices):
        ORDER_PLACED = "order_placed"
        ORDER_PAID = "order_paid"

    class Status(models.TextChoices):
        PENDING = "pending"
        SENT = "sent"
        FAILED = "failed"

    order_id = models.UUIDField()
    kind = models.CharField(max_length=32, choices=Kind.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    # The event that asked for the notification, so a row can be traced back to Kafka.
    event_id = models.UUIDField(unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            # Two events of one kind for one order (e.g. the outbox row written twice) still notify once.
            models.UniqueConstraint(fields=["order_id", "kind"], name="notification_unique_per_order_kind"),
        ]
        indexes = [
            models.Index(fields=["created_at"], condition=models.Q(status="pending"), name="notification_pending_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.order_id} ({self.status})"


class AuditEntry(models.Model):
    """One event of any aggregate, kept as published, with the Kafka position it was read from."""

    event_id = models.UUIDField(unique=True)
    event_type = models.CharField(max_length=64)
    schema_version = models.PositiveSmallIntegerField()
    aggregate_type = models.CharField(max_length=32)
    aggregate_id = models.CharField(max_length=64)
    aggregate_version = models.PositiveIntegerField()
    occurred_at = models.DateTimeField()
    payload = models.JSONField()
    topic = models.CharField(max_length=255)
    partition = models.PositiveIntegerField()
    offset = models.PositiveBigIntegerField()
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "audit entries"
        indexes = [
            models.Index(fields=["aggregate_type", "aggregate_id", "aggregate_version"], name="audit_aggregate_idx"),
            models.Index(fields=["occurred_at"], name="audit_occurred_at_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.aggregate_type}:{self.aggregate_id}@{self.aggregate_version}"

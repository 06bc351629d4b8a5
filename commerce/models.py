"""Shared infrastructure tables: client idempotency keys and the transactional outbox."""
import uuid

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models


class IdempotencyKey(models.Model):
    """The saved outcome of a client request sent with an Idempotency-Key header.

    A row exists only for requests whose effect committed: it is inserted in
    the same transaction as the effect, so neither can exist without the other.
    """

    scope = models.CharField(max_length=128, help_text="The caller the key belongs to: user:<id> or cart:<id>.")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of method, path and canonical JSON body.")
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=512)
    response_status = models.PositiveSmallIntegerField()
    response_body = models.JSONField(encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["scope", "key"], name="idempotency_key_unique_per_scope")]

    def __str__(self) -> str:
        return f"{self.scope}/{self.key}"


class OutboxEvent(models.Model):
    """An event written in the same transaction as the state change it describes.

    The relay publishes rows to Kafka and prunes them; `published_at` serves
    the polling relay, which cannot follow ids because ids commit out of order.
    """

    event_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    event_type = models.CharField(max_length=64, help_text="Dotted name such as order.placed.")
    schema_version = models.PositiveSmallIntegerField(default=1)
    aggregate_type = models.CharField(max_length=32)
    aggregate_id = models.CharField(max_length=64)
    aggregate_version = models.PositiveIntegerField()
    occurred_at = models.DateTimeField()
    payload = models.JSONField()
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # Two events claiming one version of one aggregate mean two writers raced.
            models.UniqueConstraint(
                fields=["aggregate_type", "aggregate_id", "aggregate_version"],
                name="outbox_event_unique_aggregate_version",
            ),
        ]
        indexes = [
            models.Index(fields=["id"], condition=models.Q(published_at__isnull=True), name="outbox_unpublished_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.aggregate_type}:{self.aggregate_id}@{self.aggregate_version}"

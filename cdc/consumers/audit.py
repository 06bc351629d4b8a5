"""Audit trail: every event of every aggregate, stored once as it was published."""
from __future__ import annotations

from django.utils.dateparse import parse_datetime

from cdc.consumers.base import EventConsumer, InvalidEvent, Source
from cdc.consumers.registry import register
from cdc.envelope import Envelope
from cdc.models import AuditEntry

# Every aggregate type that writes outbox events; a new one must be added here to be audited.
AUDITED_AGGREGATE_TYPES = ("order", "payment", "product", "stock", "reservation")


@register
class AuditConsumer(EventConsumer):
    name = "audit"
    aggregate_types = AUDITED_AGGREGATE_TYPES

    def handle(self, envelope: Envelope, source: Source) -> None:
        try:
            occurred_at = parse_datetime(envelope.occurred_at)
        except ValueError:
            occurred_at = None
        # A time without a UTC offset cannot be placed on the timeline, so it is as invalid as garbage.
        if occurred_at is None or occurred_at.tzinfo is None:
            raise InvalidEvent(
                f"{envelope.type} {envelope.event_id} has occurred_at {envelope.occurred_at!r}, "
                "which is not an ISO 8601 time with a UTC offset."
            )

        AuditEntry.objects.create(
            event_id=envelope.event_id,
            event_type=envelope.type,
            schema_version=envelope.version,
            aggregate_type=envelope.aggregate_type,
            aggregate_id=envelope.aggregate_id,
            aggregate_version=envelope.aggregate_version,
            occurred_at=occurred_at,
            payload=envelope.payload,
            topic=source.topic,
            partition=source.partition,
            offset=source.offset,
        )

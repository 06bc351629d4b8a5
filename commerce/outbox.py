"""Write events to the transactional outbox.

Callers are service functions inside the transaction that makes the change, so
an event exists if and only if its change committed. Payloads carry ids,
amounts and states only, never customer names, emails or addresses.
"""
from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection
from django.utils import timezone

from cdc.event_schemas import validate_payload
from commerce.logging import get_logger
from commerce.models import OutboxEvent

log = get_logger(__name__)


class _EventEncoder(DjangoJSONEncoder):
    def default(self, value: Any) -> Any:
        # Money travels as a string so no consumer rounds it through a float.
        if isinstance(value, Decimal):
            return str(value)
        return super().default(value)


def outbox_write(
    *,
    event_type: str,
    aggregate_type: str,
    aggregate_id: str,
    aggregate_version: int,
    payload: dict[str, Any],
    schema_version: int = 1,
) -> OutboxEvent:
    """Insert one event row in the caller's transaction.

    Raises RuntimeError outside a transaction (an event written on its own
    could commit without its change, or the change without its event), and
    InvalidEventPayload or UnknownEventType when the payload does not match
    the event's JSON Schema.
    """
    if not connection.in_atomic_block:
        raise RuntimeError(f"outbox_write({event_type}) must run inside the transaction that makes the change.")

    normalized = json.loads(json.dumps(payload, cls=_EventEncoder))
    # Raises before the insert, so the caller's whole transaction rolls back.
    validate_payload(event_type, schema_version, normalized)
    event = OutboxEvent.objects.create(
        event_type=event_type,
        schema_version=schema_version,
        aggregate_type=aggregate_type,
        aggregate_id=str(aggregate_id),
        aggregate_version=aggregate_version,
        occurred_at=timezone.now(),
        payload=normalized,
    )
    log.info(
        "outbox_event_written",
        event_id=str(event.event_id),
        event_type=event_type,
        aggregate_type=aggregate_type,
        aggregate_id=str(aggregate_id),
        aggregate_version=aggregate_version,
    )
    return event


def outbox_write_many(events: list[dict[str, Any]]) -> int:
    """Insert many events at once (bulk catalog seeding); each dict takes outbox_write's keyword arguments.

    Validates every payload first, so either all rows are written or none.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("outbox_write_many must run inside the transaction that makes the change.")

    rows = []
    now = timezone.now()
    for event in events:
        schema_version = event.get("schema_version", 1)
        normalized = json.loads(json.dumps(event["payload"], cls=_EventEncoder))
        validate_payload(event["event_type"], schema_version, normalized)
        rows.append(
            OutboxEvent(
                event_type=event["event_type"],
                schema_version=schema_version,
                aggregate_type=event["aggregate_type"],
                aggregate_id=str(event["aggregate_id"]),
                aggregate_version=event["aggregate_version"],
                occurred_at=now,
                payload=normalized,
            )
        )
    OutboxEvent.objects.bulk_create(rows, batch_size=2000)
    return len(rows)

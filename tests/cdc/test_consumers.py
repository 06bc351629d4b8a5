"""The notifications and audit consumers, run through `manage.py run_consumer` against the real broker."""
from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime

import pytest
from django.core.management import call_command

from cdc.consumers.audit import AUDITED_AGGREGATE_TYPES
from cdc.models import AuditEntry, Notification, ProcessedEvent

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast_consumers")]


def run_consumer(name: str, *args: str) -> str:
    output = io.StringIO()
    call_command("run_consumer", name, *args, stdout=output)
    return output.getvalue()


def test_notifications_for_placed_and_paid(kafka_producer, make_envelope):
    order_id = str(uuid.uuid4())
    placed = make_envelope("order.placed", aggregate_id=order_id, payload={"order_id": order_id, "total": "30.00"})
    paid = make_envelope("order.paid", aggregate_id=order_id, aggregate_version=2, payload={"order_id": order_id})
    fulfilled = make_envelope("order.fulfilled", aggregate_id=order_id, aggregate_version=3, payload={"order_id": order_id})
    # Another event id for the same placed order, as if the outbox row had been written twice.
    placed_again = make_envelope("order.placed", aggregate_id=order_id, payload={"order_id": order_id})
    for envelope in (placed, paid, fulfilled, placed, placed_again):
        kafka_producer.send_envelope(envelope)

    output = run_consumer("notifications", "--max-messages", "5")

    rows = {row.kind: row for row in Notification.objects.all()}
    assert set(rows) == {Notification.Kind.ORDER_PLACED, Notification.Kind.ORDER_PAID}
    assert str(rows[Notification.Kind.ORDER_PLACED].event_id) == placed.event_id
    assert str(rows[Notification.Kind.ORDER_PAID].event_id) == paid.event_id
    assert all(str(row.order_id) == order_id for row in rows.values())
    assert all(row.status == Notification.Status.PENDING for row in rows.values())
    assert output.strip() == "notifications: 5 message(s): 3 applied, 1 duplicate, 1 skipped"
    # A skipped type leaves no record, so a later consumer version that handles it can still apply it.
    assert not ProcessedEvent.objects.filter(event_id=fulfilled.event_id).exists()


def test_audit_records_every_aggregate(kafka_producer, make_envelope):
    occurred_at = datetime(2025, 3, 1, 12, 30, tzinfo=UTC)
    envelopes = {
        aggregate_type: make_envelope(
            f"{aggregate_type}.changed",
            aggregate_version=4,
            payload={"id": aggregate_type, "amount": "12.50"},
            occurred_at=occurred_at.isoformat(),
        )
        for aggregate_type in AUDITED_AGGREGATE_TYPES
    }
    deliveries = {aggregate_type: kafka_producer.send_envelope(envelope) for aggregate_type, envelope in envelopes.items()}

    output = run_consumer("audit", "--idle-timeout", "2")

    assert output.strip() == "audit: 5 message(s): 5 applied"
    assert AuditEntry.objects.count() == len(AUDITED_AGGREGATE_TYPES)
    for aggregate_type, envelope in envelopes.items():
        entry = AuditEntry.objects.get(event_id=envelope.event_id)
        delivered = deliveries[aggregate_type]
        assert entry.event_type == f"{aggregate_type}.changed"
        assert entry.schema_version == 1
        assert entry.aggregate_type == aggregate_type
        assert entry.aggregate_id == envelope.aggregate_id
        assert entry.aggregate_version == 4
        assert entry.occurred_at == occurred_at
        assert entry.payload == {"id": aggregate_type, "amount": "12.50"}
        assert (entry.topic, entry.partition, entry.offset) == (delivered.topic, delivered.partition, delivered.offset)

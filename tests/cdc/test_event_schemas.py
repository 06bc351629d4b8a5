"""Event schemas: every written payload validates, and no version breaks its predecessor's consumers."""
import pytest

from cdc.event_schemas import InvalidEventPayload, UnknownEventType, breaking_changes, load_schemas, validate_payload

REQUIRED_TYPES = {
    "order.placed",
    "order.paid",
    "order.cancelled",
    "order.expired",
    "order.fulfilled",
    "order.refunded",
    "payment.captured",
    "payment.failed",
    "payment.refunded",
    "product.created",
    "product.updated",
    "product.unpublished",
    "product.deleted",
    "stock.changed",
    "reservation.made",
    "reservation.committed",
    "reservation.released",
    "reservation.expired",
}


def test_schemas_cover_event_types():
    types = {event_type for event_type, _ in load_schemas()}

    assert REQUIRED_TYPES <= types


def consecutive_versions():
    schemas = load_schemas()
    for (event_type, version), schema in sorted(schemas.items()):
        previous = schemas.get((event_type, version - 1))
        if previous is not None:
            yield pytest.param(previous, schema, id=f"{event_type}-v{version - 1}-v{version}")


@pytest.mark.parametrize(("old", "new"), list(consecutive_versions()) or [pytest.param(None, None, marks=pytest.mark.skip(reason="only v1 schemas so far"))])
def test_new_versions_stay_compatible(old, new):
    assert breaking_changes(old, new) == []


OLD = {
    "type": "object",
    "properties": {"order_id": {"type": "string"}, "total": {"type": "string"}},
    "required": ["order_id"],
}


@pytest.mark.parametrize(
    ("new", "expected"),
    [
        ({**OLD, "properties": {"order_id": {"type": "string"}}}, "property 'total' was removed"),
        (
            {**OLD, "properties": {"order_id": {"type": "string"}, "total": {"type": "number"}}},
            "property 'total' changed type from 'string' to 'number'",
        ),
        (
            {**OLD, "properties": {**OLD["properties"], "channel": {"type": "string"}}, "required": ["order_id", "channel"]},
            "property 'channel' became required without a default",
        ),
    ],
)
def test_breaking_change_detected(new, expected):
    assert breaking_changes(OLD, new) == [expected]


def test_compatible_changes_pass():
    new = {
        **OLD,
        "properties": {**OLD["properties"], "channel": {"type": "string", "default": "web"}, "note": {"type": "string"}},
        "required": ["order_id", "channel"],
    }

    assert breaking_changes(OLD, new) == []


def test_payload_validated():
    with pytest.raises(InvalidEventPayload, match="total"):
        validate_payload(
            "order.cancelled",
            1,
            {
                "order_id": "0b0e8f36-7f4b-4a6b-9f43-6f4f1d6f5e11",
                "state": "cancelled",
                "previous_state": "pending_payment",
                "total": 12.5,
                "refunded_total": "0.00",
                "currency": "USD",
            },
        )


def test_unknown_event_type_rejected():
    with pytest.raises(UnknownEventType):
        validate_payload("order.teleported", 1, {})


@pytest.mark.django_db
def test_invalid_event_rolls_back_change():
    from django.db import transaction

    from commerce.models import OutboxEvent
    from commerce.outbox import outbox_write
    from tests.factories import ProductFactory

    with pytest.raises(InvalidEventPayload):
        with transaction.atomic():
            ProductFactory(title="Doomed")
            outbox_write(
                event_type="product.created",
                aggregate_type="product",
                aggregate_id="1",
                aggregate_version=1,
                payload={"product_id": 1},
            )

    from catalog.models import Product

    assert not Product.objects.filter(title="Doomed").exists()
    assert not OutboxEvent.objects.exists()

"""Inventory writes stock.changed and reservation.* events in the same transaction as the change."""
from datetime import timedelta

import pytest

from commerce.models import OutboxEvent
from inventory import services as inventory

pytestmark = pytest.mark.django_db


def events(aggregate_type: str) -> list[tuple[str, str, int]]:
    rows = OutboxEvent.objects.filter(aggregate_type=aggregate_type).order_by("id")
    return list(rows.values_list("event_type", "aggregate_id", "aggregate_version"))


def test_receive_writes_stock_changed():
    inventory.receive(sku="EVT-1", quantity=5, reason="delivery", actor="tests")
    inventory.adjust(sku="EVT-1", delta=-2, reason="damaged", actor="tests")

    stock = OutboxEvent.objects.filter(event_type="stock.changed").order_by("id")
    assert [event.payload["on_hand"] for event in stock] == [5, 3]
    assert [event.payload["kind"] for event in stock] == ["receipt", "adjustment"]
    versions = [event.aggregate_version for event in stock]
    assert versions == sorted(versions)
    assert versions[0] < versions[1]


def test_reservation_lifecycle_events():
    inventory.receive(sku="EVT-2", quantity=5, reason="delivery", actor="tests")
    reservation = inventory.reserve(lines=[("EVT-2", 2)], reference="order:evt", ttl=timedelta(minutes=5))
    inventory.commit(reference="order:evt")

    assert events("reservation") == [
        ("reservation.made", str(reservation.pk), 1),
        ("reservation.committed", str(reservation.pk), 2),
    ]
    sale = OutboxEvent.objects.filter(event_type="stock.changed").order_by("id").last()
    assert sale.payload["kind"] == "sale"
    assert sale.payload["on_hand"] == 3
    assert sale.payload["reserved"] == 0


def test_release_writes_released_event():
    inventory.receive(sku="EVT-3", quantity=1, reason="delivery", actor="tests")
    inventory.reserve(lines=[("EVT-3", 1)], reference="order:gone", ttl=timedelta(minutes=5))

    inventory.release(reference="order:gone")
    inventory.release(reference="order:gone")

    assert [event_type for event_type, _, _ in events("reservation")] == ["reservation.made", "reservation.released"]


def test_failed_reserve_writes_nothing():
    inventory.receive(sku="EVT-4", quantity=1, reason="delivery", actor="tests")
    before = OutboxEvent.objects.count()

    with pytest.raises(Exception):
        inventory.reserve(lines=[("EVT-4", 2)], reference="order:too-many", ttl=timedelta(minutes=5))

    assert OutboxEvent.objects.count() == before

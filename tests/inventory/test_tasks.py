"""Celery tasks: registered under their beat names, and safe to run twice (Celery can deliver twice)."""
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from commerce.celery import app
from inventory.models import Reservation, StockItem, StockMovement
from inventory.services import reserve
from inventory.tasks import expire_reservations, reconcile_inventory
from tests.factories import make_stock

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("entry", "task", "interval"),
    [
        ("inventory-expire-reservations", "inventory.tasks.expire_reservations", 5.0),
        ("inventory-reconcile", "inventory.tasks.reconcile_inventory", 300.0),
    ],
)
def test_beat_schedules_task(entry, task, interval):
    schedule = settings.CELERY_BEAT_SCHEDULE[entry]

    assert schedule["task"] == task
    assert schedule["schedule"] == interval
    assert task in app.tasks


def test_expire_task_twice():
    make_stock("MUG", 5)
    for index in range(3):
        reserve(lines=[("MUG", 1)], reference=f"order:{index}", ttl=timedelta(minutes=5))
    Reservation.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    first = expire_reservations.apply().get()
    second = expire_reservations.apply().get()

    assert first == 3
    assert second == 0
    assert set(Reservation.objects.values_list("status", flat=True)) == {"expired"}
    assert StockItem.objects.get(sku="MUG").reserved == 0


def test_expire_task_leaves_future_reservations():
    make_stock("MUG", 5)
    reserve(lines=[("MUG", 1)], reference="order:1", ttl=timedelta(minutes=5))

    assert expire_reservations.apply().get() == 0
    assert StockItem.objects.get(sku="MUG").reserved == 1


def test_reconcile_task_twice():
    make_stock("MUG", 5)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE inventory_stockitem SET reserved = 2 WHERE sku = %s", ["MUG"])
    movements = StockMovement.objects.count()

    first = reconcile_inventory.apply().get()
    second = reconcile_inventory.apply().get()

    assert first == second
    assert first["drift_count"] == 1
    assert first["skus"][0]["sku"] == "MUG"
    assert StockItem.objects.get(sku="MUG").reserved == 2
    assert StockMovement.objects.count() == movements


def test_reconcile_task_clean():
    make_stock("MUG", 5)

    report = reconcile_inventory.apply().get()

    assert report["drift_count"] == 0

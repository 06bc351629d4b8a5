"""Races on real PostgreSQL: 50 threads, each with its own connection, against the same stock rows."""
import random
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from commerce.errors import ConflictError
from inventory.models import Reservation, ReservationLine, StockItem, StockMovement
from inventory.services import adjust, commit, expire_due, reconcile, release, reserve
from tests.factories import make_stock
from tests.inventory.support import assert_invariants, run_concurrently

pytestmark = pytest.mark.django_db(transaction=True)

WORKERS = 50

# Errors a caller must expect when it races others. Any other error fails the test.
EXPECTED_CODES = {
    "out_of_stock",
    "reservation_committed",
    "reservation_expired",
    "reservation_released",
    "stock_below_reserved",
    "on_hand_negative",
}


def test_last_units_race():
    make_stock("HOT", 10)

    def buy(index: int):
        return reserve(lines=[("HOT", 1)], reference=f"order:{index}", ttl=timedelta(minutes=5))

    outcomes = run_concurrently(buy, [(index,) for index in range(WORKERS)])

    succeeded = [outcome for outcome in outcomes if outcome.error is None]
    failed = [outcome.error for outcome in outcomes if outcome.error is not None]
    item = StockItem.objects.get(sku="HOT")
    assert len(succeeded) == 10
    assert len(failed) == WORKERS - 10
    assert {type(error) for error in failed} == {ConflictError}
    assert {error.code for error in failed} == {"out_of_stock"}
    assert item.reserved == 10
    assert item.on_hand == 10
    assert Reservation.objects.filter(status="active").count() == 10
    assert_invariants()


def test_mixed_operations_race():
    skus = ["HOT-A", "HOT-B", "HOT-C"]
    for sku in skus:
        make_stock(sku, 30)
    seed = random.Random(2024)
    shared = []
    for index in range(40):
        reference = f"pre:{index}"
        reserve(lines=[(seed.choice(skus), 1)], reference=reference, ttl=timedelta(minutes=1))
        shared.append(reference)
    sweep_at = timezone.now() + timedelta(minutes=2)

    def work(worker: int) -> list[str]:
        rng = random.Random(worker)
        own: dict[str, list[tuple[str, int]]] = {}
        unexpected = []
        for step in range(12):
            action = rng.choice(["reserve", "reserve", "retry", "commit", "release", "expire", "adjust"])
            try:
                if action == "reserve":
                    lines = [(sku, rng.randint(1, 3)) for sku in rng.sample(skus, rng.randint(1, 3))]
                    reference = f"w{worker}:{step}"
                    ttl = rng.choice([timedelta(minutes=1), timedelta(hours=1)])
                    reserve(lines=lines, reference=reference, ttl=ttl)
                    own[reference] = lines
                elif action == "retry" and own:
                    reference, lines = rng.choice(sorted(own.items()))
                    reserve(lines=lines, reference=reference, ttl=timedelta(hours=1))
                elif action in ("commit", "release"):
                    reference = rng.choice(shared + sorted(own))
                    (commit if action == "commit" else release)(reference=reference)
                elif action == "expire":
                    expire_due(now=sweep_at, batch_size=5)
                elif action == "adjust":
                    adjust(sku=rng.choice(skus), delta=rng.choice([-2, -1, 1, 3]), reason="count", actor=f"w{worker}")
            except ConflictError as exc:
                if exc.code not in EXPECTED_CODES:
                    unexpected.append(f"{action}: {exc.code}")
        return unexpected

    outcomes = run_concurrently(work, [(worker,) for worker in range(WORKERS)])

    assert [outcome.error for outcome in outcomes] == [None] * WORKERS
    assert [outcome.value for outcome in outcomes] == [[]] * WORKERS
    assert_invariants()
    assert reconcile(fix=False, actor="tests").drift == []

    # Every committed reservation, and no other, left one sale row per line.
    committed = Reservation.objects.filter(status="committed")
    sold = {
        (movement.reason, movement.sku, -movement.quantity)
        for movement in StockMovement.objects.filter(kind=StockMovement.Kind.SALE)
    }
    expected = {
        (f"reservation {line.reservation.reference} committed", line.sku, line.quantity)
        for line in ReservationLine.objects.filter(reservation__in=committed).select_related("reservation")
    }
    assert sold == expected


def test_opposite_order_lines_no_deadlock():
    skus = ["LOCK-A", "LOCK-B", "LOCK-C", "LOCK-D"]
    for sku in skus:
        make_stock(sku, 10_000)

    def work(worker: int) -> int:
        order = skus if worker % 2 == 0 else list(reversed(skus))
        for step in range(10):
            reference = f"w{worker}:{step}"
            # The caller's transaction keeps the row locks a little longer, as
            # a checkout does while it writes the order.
            with transaction.atomic():
                reserve(lines=[(sku, 1) for sku in order], reference=reference, ttl=timedelta(minutes=5))
                StockItem.objects.filter(sku__in=skus).count()
            with transaction.atomic():
                (commit if step % 2 == 0 else release)(reference=reference)
        return step + 1

    outcomes = run_concurrently(work, [(worker,) for worker in range(WORKERS)])

    assert [outcome.error for outcome in outcomes] == [None] * WORKERS
    assert Reservation.objects.count() == WORKERS * 10
    for sku in skus:
        assert StockItem.objects.get(sku=sku).on_hand == 10_000 - WORKERS * 5, sku
    assert_invariants()

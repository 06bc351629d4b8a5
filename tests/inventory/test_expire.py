"""expire_due(): batches, repeats, and races with itself and with commit on real PostgreSQL."""
import random
import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from commerce.errors import ConflictError, DomainError
from inventory.models import Reservation, StockItem, StockMovement
from inventory.services import commit, expire_due, reserve
from tests.factories import make_stock
from tests.inventory.support import assert_invariants, run_concurrently

TTL = timedelta(minutes=15)


def later() -> timezone.datetime:
    """A time at which every reservation made with TTL is due."""
    return timezone.now() + 2 * TTL


def reserve_many(count: int, *, sku: str = "MUG") -> list[str]:
    references = [f"order:{index}" for index in range(count)]
    for reference in references:
        reserve(lines=[(sku, 1)], reference=reference, ttl=TTL)
    return references


def statuses() -> dict[str, str]:
    return dict(Reservation.objects.values_list("reference", "status"))


@pytest.mark.django_db
def test_expire_due_only():
    make_stock("MUG", 10)
    reserve(lines=[("MUG", 2)], reference="order:short", ttl=timedelta(minutes=1))
    reserve(lines=[("MUG", 3)], reference="order:long", ttl=timedelta(hours=1))

    expired = expire_due(now=timezone.now() + timedelta(minutes=5))

    assert expired == 1
    assert statuses() == {"order:short": "expired", "order:long": "active"}
    assert StockItem.objects.get(sku="MUG").reserved == 3
    assert_invariants()


@pytest.mark.django_db
def test_expire_all_batches():
    make_stock("MUG", 30)
    reserve_many(23)

    expired = expire_due(now=later(), batch_size=5)

    assert expired == 23
    assert set(statuses().values()) == {"expired"}
    assert StockItem.objects.get(sku="MUG").reserved == 0


@pytest.mark.django_db
def test_expire_twice_is_noop():
    make_stock("MUG", 10)
    reserve_many(4)
    now = later()
    expire_due(now=now)

    again = expire_due(now=now)

    assert again == 0
    assert StockItem.objects.get(sku="MUG").reserved == 0
    assert_invariants()


@pytest.mark.django_db
def test_expire_writes_no_ledger_rows():
    make_stock("MUG", 10)
    reserve_many(4)
    movements = StockMovement.objects.count()

    expire_due(now=later())

    assert StockMovement.objects.count() == movements


@pytest.mark.django_db
def test_expire_rejects_zero_batch():
    with pytest.raises(DomainError) as excinfo:
        expire_due(now=timezone.now(), batch_size=0)

    assert excinfo.value.code == "invalid_batch_size"


@pytest.mark.django_db(transaction=True)
def test_expire_twice_at_once():
    make_stock("MUG", 200)
    reserve_many(200)
    now = later()

    outcomes = run_concurrently(lambda: expire_due(now=now, batch_size=10), [(), ()])

    assert [outcome.error for outcome in outcomes] == [None, None]
    assert sum(outcome.value for outcome in outcomes) == 200
    assert set(statuses().values()) == {"expired"}
    assert StockItem.objects.get(sku="MUG").reserved == 0
    assert_invariants()


@pytest.mark.django_db(transaction=True)
def test_expire_skips_row_being_committed():
    make_stock("MUG", 5)
    reserve(lines=[("MUG", 2)], reference="order:1", ttl=TTL)
    locked = threading.Event()
    finish = threading.Event()

    def pay() -> None:
        try:
            with transaction.atomic():
                commit(reference="order:1")
                locked.set()
                finish.wait(timeout=30)
        finally:
            connection.close()

    payer = threading.Thread(target=pay)
    payer.start()
    assert locked.wait(timeout=30)

    started = time.monotonic()
    expired = expire_due(now=later())
    waited = time.monotonic() - started
    finish.set()
    payer.join(timeout=30)

    # SKIP LOCKED: the sweep neither waited for the payment nor expired its row.
    assert expired == 0
    assert waited < 5
    assert statuses() == {"order:1": "committed"}
    assert StockItem.objects.get(sku="MUG").on_hand == 3
    assert expire_due(now=later()) == 0
    assert_invariants()


@pytest.mark.django_db(transaction=True)
def test_commit_waits_for_sweep_then_fails():
    make_stock("MUG", 5)
    reserve(lines=[("MUG", 2)], reference="order:1", ttl=TTL)
    locked = threading.Event()
    finish = threading.Event()
    payment: dict = {}

    def sweep() -> None:
        try:
            with transaction.atomic():
                expire_due(now=later())
                locked.set()
                finish.wait(timeout=30)
        finally:
            connection.close()

    def pay() -> None:
        try:
            commit(reference="order:1")
        except ConflictError as exc:
            payment["code"] = exc.code
        finally:
            connection.close()

    sweeper = threading.Thread(target=sweep)
    sweeper.start()
    assert locked.wait(timeout=30)
    payer = threading.Thread(target=pay)
    payer.start()
    payer.join(timeout=0.5)
    blocked = payer.is_alive()
    finish.set()
    sweeper.join(timeout=30)
    payer.join(timeout=30)

    assert blocked
    assert payment == {"code": "reservation_expired"}
    assert statuses() == {"order:1": "expired"}
    assert StockItem.objects.get(sku="MUG").on_hand == 5
    assert not StockMovement.objects.filter(kind=StockMovement.Kind.SALE).exists()
    assert_invariants()


@pytest.mark.django_db(transaction=True)
def test_commit_and_expire_race():
    make_stock("MUG", 100)
    references = reserve_many(100)
    random.Random(7).shuffle(references)
    now = later()

    def pay_all() -> int:
        paid = 0
        for reference in references:
            try:
                commit(reference=reference)
                paid += 1
            except ConflictError as exc:
                assert exc.code == "reservation_expired"
        return paid

    def sweep() -> int:
        return sum(expire_due(now=now, batch_size=3) for _ in range(20))

    payer, sweeper = run_concurrently(lambda job: job(), [(pay_all,), (sweep,)])

    final = statuses()
    sold = -sum(StockMovement.objects.filter(kind=StockMovement.Kind.SALE).values_list("quantity", flat=True))
    assert payer.error is None
    assert sweeper.error is None
    assert set(final.values()) <= {"committed", "expired"}
    assert payer.value == list(final.values()).count("committed")
    assert sweeper.value == list(final.values()).count("expired")
    assert sold == payer.value
    assert StockItem.objects.get(sku="MUG").on_hand == 100 - payer.value
    assert_invariants()

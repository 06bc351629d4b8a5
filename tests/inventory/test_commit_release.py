"""commit() and release(): legal transitions, repeats as no-ops, and loud failures."""
from datetime import timedelta

import pytest
from django.utils import timezone

from commerce.errors import ConflictError, NotFoundError
from inventory.models import Reservation, StockItem, StockMovement
from inventory.services import commit, expire_due, release, reserve
from tests.factories import make_stock
from tests.inventory.support import assert_invariants

pytestmark = pytest.mark.django_db

TTL = timedelta(minutes=15)


def counters(sku: str) -> tuple[int, int]:
    item = StockItem.objects.get(sku=sku)
    return item.on_hand, item.reserved


def status(reference: str) -> str:
    return Reservation.objects.get(reference=reference).status


@pytest.fixture
def reserved():
    """Two SKUs with 5 on hand each, and order:1 holding 2 of the first and 1 of the second."""
    make_stock("CUP", 5)
    make_stock("MUG", 5)
    return reserve(lines=[("MUG", 2), ("CUP", 1)], reference="order:1", ttl=TTL)


def test_commit_sells_units(reserved):
    commit(reference="order:1", actor="payments")

    assert status("order:1") == Reservation.Status.COMMITTED
    assert counters("MUG") == (3, 0)
    assert counters("CUP") == (4, 0)
    assert_invariants()


def test_commit_writes_sale_rows(reserved):
    commit(reference="order:1", actor="payments")

    sales = StockMovement.objects.filter(kind=StockMovement.Kind.SALE).order_by("sku")
    assert list(sales.values_list("sku", "quantity")) == [("CUP", -1), ("MUG", -2)]
    assert set(sales.values_list("actor", flat=True)) == {"payments"}


def test_commit_twice_is_noop(reserved):
    commit(reference="order:1")

    again = commit(reference="order:1")

    assert again.status == Reservation.Status.COMMITTED
    assert counters("MUG") == (3, 0)
    assert StockMovement.objects.filter(kind=StockMovement.Kind.SALE).count() == 2


def test_commit_unknown_reference():
    with pytest.raises(NotFoundError) as excinfo:
        commit(reference="order:404")

    assert excinfo.value.code == "reservation_not_found"


def test_commit_released_fails(reserved):
    release(reference="order:1")

    with pytest.raises(ConflictError) as excinfo:
        commit(reference="order:1")

    assert excinfo.value.code == "reservation_released"
    assert status("order:1") == Reservation.Status.RELEASED
    assert counters("MUG") == (5, 0)


def test_commit_expired_fails(reserved):
    expire_due(now=timezone.now() + 2 * TTL)

    with pytest.raises(ConflictError) as excinfo:
        commit(reference="order:1")

    assert excinfo.value.code == "reservation_expired"
    assert counters("MUG") == (5, 0)
    assert not StockMovement.objects.filter(kind=StockMovement.Kind.SALE).exists()


def test_commit_due_but_unswept(reserved):
    Reservation.objects.filter(reference="order:1").update(expires_at=timezone.now() - timedelta(seconds=1))

    commit(reference="order:1")

    assert status("order:1") == Reservation.Status.COMMITTED
    assert expire_due(now=timezone.now()) == 0


def test_release_frees_units(reserved):
    release(reference="order:1")

    assert status("order:1") == Reservation.Status.RELEASED
    assert counters("MUG") == (5, 0)
    assert counters("CUP") == (5, 0)
    assert_invariants()


def test_release_twice_is_noop(reserved):
    release(reference="order:1")

    again = release(reference="order:1")

    assert again.status == Reservation.Status.RELEASED
    assert counters("MUG") == (5, 0)


def test_release_expired_is_noop(reserved):
    expire_due(now=timezone.now() + 2 * TTL)

    again = release(reference="order:1")

    assert again.status == Reservation.Status.EXPIRED
    assert counters("MUG") == (5, 0)


def test_release_committed_fails(reserved):
    commit(reference="order:1")

    with pytest.raises(ConflictError) as excinfo:
        release(reference="order:1")

    assert excinfo.value.code == "reservation_committed"
    assert status("order:1") == Reservation.Status.COMMITTED
    assert counters("MUG") == (3, 0)


def test_release_unknown_changes_nothing(reserved):
    movements = StockMovement.objects.count()

    result = release(reference="cart:never-reserved")

    assert result is None
    assert status("order:1") == Reservation.Status.ACTIVE
    assert Reservation.objects.count() == 1
    assert counters("MUG") == (5, 2)
    assert counters("CUP") == (5, 1)
    assert StockMovement.objects.count() == movements


def test_release_then_reserve_elsewhere(reserved):
    release(reference="order:1")

    reserve(lines=[("MUG", 5)], reference="order:2", ttl=TTL)

    assert counters("MUG") == (5, 5)
    assert_invariants()

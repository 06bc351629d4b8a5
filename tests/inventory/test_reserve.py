"""reserve(): all-or-none lines, idempotency by reference, and its errors."""
from datetime import timedelta

import pytest
from django.db import transaction

from commerce.errors import ConflictError, DomainError
from inventory.models import Reservation, ReservationLine, StockItem
from inventory.services import StockLine, reserve
from tests.factories import make_stock
from tests.inventory.support import assert_invariants

pytestmark = pytest.mark.django_db

TTL = timedelta(minutes=15)


def counters(sku: str) -> tuple[int, int]:
    item = StockItem.objects.get(sku=sku)
    return item.on_hand, item.reserved


def test_reserve_single_line():
    make_stock("MUG", 5)

    reservation = reserve(lines=[("MUG", 2)], reference="order:1", ttl=TTL)

    assert reservation.status == Reservation.Status.ACTIVE
    assert counters("MUG") == (5, 2)
    assert list(reservation.lines.values_list("sku", "quantity")) == [("MUG", 2)]
    assert_invariants()


def test_reserve_sets_expiry_from_ttl():
    make_stock("MUG", 5)

    reservation = reserve(lines=[("MUG", 1)], reference="order:1", ttl=TTL)

    assert reservation.expires_at - reservation.created_at == TTL


def test_reserve_accepts_stock_lines():
    make_stock("MUG", 5)
    make_stock("CUP", 5)

    reserve(lines=[StockLine("MUG", 1), StockLine("CUP", 3)], reference="order:1", ttl=TTL)

    assert counters("MUG") == (5, 1)
    assert counters("CUP") == (5, 3)


def test_reserve_merges_duplicate_skus():
    make_stock("MUG", 5)

    reservation = reserve(lines=[("MUG", 1), ("MUG", 2)], reference="order:1", ttl=TTL)

    assert list(reservation.lines.values_list("sku", "quantity")) == [("MUG", 3)]
    assert counters("MUG") == (5, 3)


def test_reserve_out_of_stock_reports_numbers():
    make_stock("MUG", 1)

    with pytest.raises(ConflictError) as excinfo:
        reserve(lines=[("MUG", 3)], reference="order:1", ttl=TTL)

    assert excinfo.value.code == "out_of_stock"
    assert excinfo.value.status == 409
    assert excinfo.value.extra["skus"] == [{"sku": "MUG", "requested": 3, "available": 1}]


def test_reserve_unknown_sku_is_out_of_stock():
    with pytest.raises(ConflictError) as excinfo:
        reserve(lines=[("GHOST", 1)], reference="order:1", ttl=TTL)

    assert excinfo.value.code == "out_of_stock"
    assert excinfo.value.extra["skus"] == [{"sku": "GHOST", "requested": 1, "available": 0}]


def test_reserve_all_or_none():
    make_stock("A-CUP", 5)
    make_stock("B-MUG", 5)
    make_stock("C-PAN", 1)

    with pytest.raises(ConflictError) as excinfo:
        reserve(lines=[("A-CUP", 2), ("B-MUG", 2), ("C-PAN", 2)], reference="order:1", ttl=TTL)

    # A-CUP and B-MUG were reserved before C-PAN failed, so the rollback must undo them.
    assert excinfo.value.code == "out_of_stock"
    assert counters("A-CUP") == (5, 0)
    assert counters("B-MUG") == (5, 0)
    assert not Reservation.objects.exists()
    assert not ReservationLine.objects.exists()


def test_reserve_lists_every_short_sku():
    make_stock("A-CUP", 1)
    make_stock("B-MUG", 5)

    with pytest.raises(ConflictError) as excinfo:
        reserve(lines=[("A-CUP", 2), ("B-MUG", 1), ("C-PAN", 1)], reference="order:1", ttl=TTL)

    assert [line["sku"] for line in excinfo.value.extra["skus"]] == ["A-CUP", "C-PAN"]


def test_reserve_same_reference_returns_existing():
    make_stock("MUG", 5)
    first = reserve(lines=[("MUG", 2)], reference="order:1", ttl=TTL)

    again = reserve(lines=[("MUG", 2)], reference="order:1", ttl=timedelta(hours=2))

    assert again.pk == first.pk
    assert again.expires_at == first.expires_at
    assert counters("MUG") == (5, 2)
    assert Reservation.objects.count() == 1


def test_reserve_same_reference_after_commit():
    from inventory.services import commit

    make_stock("MUG", 5)
    first = reserve(lines=[("MUG", 2)], reference="order:1", ttl=TTL)
    commit(reference="order:1")

    again = reserve(lines=[("MUG", 2)], reference="order:1", ttl=TTL)

    assert again.pk == first.pk
    assert again.status == Reservation.Status.COMMITTED
    assert counters("MUG") == (3, 0)


def test_reserve_same_reference_other_lines():
    make_stock("MUG", 5)
    make_stock("CUP", 5)
    reserve(lines=[("MUG", 2)], reference="order:1", ttl=TTL)

    with pytest.raises(ConflictError) as excinfo:
        reserve(lines=[("MUG", 2), ("CUP", 1)], reference="order:1", ttl=TTL)

    assert excinfo.value.code == "reservation_mismatch"
    assert excinfo.value.extra["reserved_lines"] == {"MUG": 2}
    assert excinfo.value.extra["requested_lines"] == {"MUG": 2, "CUP": 1}
    assert counters("CUP") == (5, 0)


@pytest.mark.parametrize("ending", ["release", "expire"])
def test_reserve_ended_reference(ending):
    from django.utils import timezone

    from inventory.services import expire_due, release

    make_stock("MUG", 5)
    reserve(lines=[("MUG", 2)], reference="order:1", ttl=TTL)
    if ending == "release":
        release(reference="order:1")
    else:
        expire_due(now=timezone.now() + 2 * TTL)

    with pytest.raises(ConflictError) as excinfo:
        reserve(lines=[("MUG", 2)], reference="order:1", ttl=TTL)

    assert excinfo.value.code == f"reservation_{ending}d"
    assert counters("MUG") == (5, 0)


@pytest.mark.parametrize(
    ("lines", "code"),
    [
        ([], "invalid_lines"),
        ([("MUG", 0)], "invalid_quantity"),
        ([("MUG", -1)], "invalid_quantity"),
        ([("MUG", 1.5)], "invalid_quantity"),
        ([("MUG", True)], "invalid_quantity"),
        ([("", 1)], "invalid_sku"),
        ([("M" * 65, 1)], "invalid_sku"),
    ],
)
def test_reserve_invalid_lines(lines, code):
    make_stock("MUG", 5)

    with pytest.raises(DomainError) as excinfo:
        reserve(lines=lines, reference="order:1", ttl=TTL)

    assert excinfo.value.code == code
    assert excinfo.value.status == 400
    assert not Reservation.objects.exists()


@pytest.mark.parametrize("ttl", [timedelta(0), timedelta(seconds=-1), 60])
def test_reserve_invalid_ttl(ttl):
    make_stock("MUG", 5)

    with pytest.raises(DomainError) as excinfo:
        reserve(lines=[("MUG", 1)], reference="order:1", ttl=ttl)

    assert excinfo.value.code == "invalid_ttl"


@pytest.mark.parametrize("reference", ["", "r" * 129, None])
def test_reserve_invalid_reference(reference):
    make_stock("MUG", 5)

    with pytest.raises(DomainError) as excinfo:
        reserve(lines=[("MUG", 1)], reference=reference, ttl=TTL)

    assert excinfo.value.code == "invalid_reference"


def test_reserve_joins_caller_transaction():
    make_stock("MUG", 5)

    with pytest.raises(RuntimeError):
        with transaction.atomic():
            reserve(lines=[("MUG", 2)], reference="order:1", ttl=TTL)
            raise RuntimeError("the caller fails after reserving")

    assert counters("MUG") == (5, 0)
    assert not Reservation.objects.exists()


def test_reserve_failure_keeps_caller_transaction():
    make_stock("MUG", 5)

    with transaction.atomic():
        reserve(lines=[("MUG", 2)], reference="order:1", ttl=TTL)
        with pytest.raises(ConflictError):
            reserve(lines=[("MUG", 4)], reference="order:2", ttl=TTL)

    assert counters("MUG") == (5, 2)
    assert list(Reservation.objects.values_list("reference", flat=True)) == ["order:1"]


def test_reserve_query_count(django_assert_num_queries):
    make_stock("MUG", 5)

    # SAVEPOINT, header INSERT, lines INSERT, one stock UPDATE, lines SELECT and
    # outbox INSERT for reservation.made, RELEASE SAVEPOINT: the hot path must
    # not grow a query per line beyond the UPDATE.
    with django_assert_num_queries(7):
        reserve(lines=[("MUG", 1)], reference="order:1", ttl=TTL)

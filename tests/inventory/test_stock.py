"""receive(), restock(), adjust() and stock_set_on_hand(): on-hand changes always come with a ledger row."""
from datetime import timedelta

import pytest

from commerce.errors import ConflictError, DomainError, NotFoundError
from inventory.models import StockItem, StockMovement
from inventory.services import adjust, receive, reserve, restock, stock_set_on_hand
from tests.factories import make_stock
from tests.inventory.support import assert_invariants

pytestmark = pytest.mark.django_db


def movements(sku: str) -> list[tuple[str, int]]:
    return list(StockMovement.objects.filter(sku=sku).order_by("id").values_list("kind", "quantity"))


def test_receive_creates_item():
    item = receive(sku="MUG", quantity=4, reason="delivery 17", actor="warehouse")

    assert item.on_hand == 4
    assert movements("MUG") == [("receipt", 4)]
    assert_invariants()


def test_receive_adds_to_item():
    make_stock("MUG", 4)

    item = receive(sku="MUG", quantity=3, reason="delivery 18", actor="warehouse")

    assert item.on_hand == 7
    assert movements("MUG") == [("receipt", 4), ("receipt", 3)]


@pytest.mark.parametrize("quantity", [0, -2, 1.5, True])
def test_receive_invalid_quantity(quantity):
    with pytest.raises(DomainError) as excinfo:
        receive(sku="MUG", quantity=quantity, reason="delivery", actor="warehouse")

    assert excinfo.value.code == "invalid_quantity"
    assert not StockItem.objects.exists()


def test_receive_requires_reason():
    with pytest.raises(DomainError) as excinfo:
        receive(sku="MUG", quantity=1, reason="  ", actor="warehouse")

    assert excinfo.value.code == "invalid_reason"


def test_receive_beyond_integer_column():
    make_stock("MUG", 2**31 - 2)

    with pytest.raises(ConflictError) as excinfo:
        receive(sku="MUG", quantity=2, reason="delivery", actor="warehouse")

    assert excinfo.value.code == "on_hand_too_large"


def test_restock_writes_return():
    make_stock("MUG", 1)

    item = restock(sku="MUG", quantity=2, reason="refund of order 9", actor="support")

    assert item.on_hand == 3
    assert movements("MUG") == [("receipt", 1), ("return", 2)]
    assert_invariants()


def test_adjust_up_and_down():
    make_stock("MUG", 5)

    adjust(sku="MUG", delta=3, reason="found a box", actor="ada")
    item = adjust(sku="MUG", delta=-6, reason="breakage", actor="ada")

    assert item.on_hand == 2
    assert movements("MUG") == [("receipt", 5), ("adjustment", 3), ("adjustment", -6)]
    assert_invariants()


def test_adjust_to_zero():
    make_stock("MUG", 5)

    item = adjust(sku="MUG", delta=-5, reason="written off", actor="ada")

    assert item.on_hand == 0


def test_adjust_unknown_sku():
    with pytest.raises(NotFoundError) as excinfo:
        adjust(sku="GHOST", delta=1, reason="count", actor="ada")

    assert excinfo.value.code == "sku_not_found"
    assert not StockItem.objects.exists()


def test_adjust_below_zero():
    make_stock("MUG", 2)

    with pytest.raises(ConflictError) as excinfo:
        adjust(sku="MUG", delta=-3, reason="count", actor="ada")

    assert excinfo.value.code == "on_hand_negative"
    assert excinfo.value.extra == {"sku": "MUG", "delta": -3, "on_hand": 2, "reserved": 0, "available": 2}
    assert StockItem.objects.get(sku="MUG").on_hand == 2
    assert movements("MUG") == [("receipt", 2)]


def test_adjust_below_reserved():
    make_stock("MUG", 5)
    reserve(lines=[("MUG", 4)], reference="order:1", ttl=timedelta(minutes=5))

    with pytest.raises(ConflictError) as excinfo:
        adjust(sku="MUG", delta=-2, reason="count", actor="ada")

    assert excinfo.value.code == "stock_below_reserved"
    assert excinfo.value.extra == {"sku": "MUG", "delta": -2, "on_hand": 5, "reserved": 4, "available": 1}
    assert StockItem.objects.get(sku="MUG").on_hand == 5
    assert movements("MUG") == [("receipt", 5)]


@pytest.mark.parametrize("delta", [0, 1.0, "2", True, None])
def test_adjust_invalid_delta(delta):
    make_stock("MUG", 5)

    with pytest.raises(DomainError) as excinfo:
        adjust(sku="MUG", delta=delta, reason="count", actor="ada")

    assert excinfo.value.code == "invalid_delta"
    assert movements("MUG") == [("receipt", 5)]


def test_set_on_hand_below_reserved():
    make_stock("MUG", 5)
    reserve(lines=[("MUG", 3)], reference="order:1", ttl=timedelta(minutes=5))

    with pytest.raises(ConflictError) as excinfo:
        stock_set_on_hand(sku="MUG", on_hand=2, reason="import", actor="importer")

    assert excinfo.value.code == "stock_below_reserved"
    assert StockItem.objects.get(sku="MUG").on_hand == 5


def test_set_on_hand_new_sku_is_receipt():
    changed = stock_set_on_hand(sku="MUG", on_hand=4, reason="import", actor="importer")

    assert changed
    assert movements("MUG") == [("receipt", 4)]


def test_set_on_hand_existing_is_adjustment():
    make_stock("MUG", 4)

    stock_set_on_hand(sku="MUG", on_hand=1, reason="import", actor="importer")

    assert movements("MUG") == [("receipt", 4), ("adjustment", -3)]
    assert_invariants()

"""Logging in merges the guest cart into the customer's cart.

Policy: quantities of one SKU add up, capped at the units available (never
below what the customer's cart already held) and at the per-line maximum;
SKUs no longer sold are dropped; the guest cart is retired and cannot be
used again; merging twice changes nothing.
"""
import pytest
from django.contrib.auth import get_user_model

from cart.models import Cart
from cart.services import cart_add_item, cart_create, cart_merge_guest
from tests.shopping import Shopper, stocked_variant

pytestmark = pytest.mark.django_db


@pytest.fixture
def customer():
    return get_user_model().objects.create_user(username="ada", password="correct horse battery")


def quantities(cart: Cart) -> dict[str, int]:
    return dict(cart.items.values_list("sku", "quantity"))


def test_merge_adds_quantities(customer):
    shared, guest_only = stocked_variant(on_hand=10), stocked_variant(on_hand=10)
    customer_cart = cart_create(user=customer)
    cart_add_item(cart=customer_cart, sku=shared.sku, quantity=2)
    guest = cart_create(user=None)
    cart_add_item(cart=guest, sku=shared.sku, quantity=3)
    cart_add_item(cart=guest, sku=guest_only.sku, quantity=1)

    merged = cart_merge_guest(guest_cart=guest, user=customer)

    assert merged.pk == customer_cart.pk
    assert quantities(merged) == {shared.sku: 5, guest_only.sku: 1}


def test_merge_caps_at_stock(customer):
    variant = stocked_variant(on_hand=4)
    customer_cart = cart_create(user=customer)
    cart_add_item(cart=customer_cart, sku=variant.sku, quantity=3)
    guest = cart_create(user=None)
    cart_add_item(cart=guest, sku=variant.sku, quantity=3)

    merged = cart_merge_guest(guest_cart=guest, user=customer)

    assert quantities(merged) == {variant.sku: 4}


def test_merge_twice_is_noop(customer):
    variant = stocked_variant()
    guest = cart_create(user=None)
    cart_add_item(cart=guest, sku=variant.sku, quantity=2)

    first = cart_merge_guest(guest_cart=guest, user=customer)
    second = cart_merge_guest(guest_cart=guest, user=customer)

    assert first.pk == second.pk
    assert quantities(second) == {variant.sku: 2}


def test_merged_cart_cannot_be_used(customer):
    variant = stocked_variant()
    shopper = Shopper()
    shopper.new_cart()
    shopper.add(variant.sku, 1)
    cart_merge_guest(guest_cart=Cart.objects.get(pk=shopper.cart_id), user=customer)

    response = shopper.add(variant.sku, 1)

    assert response.status_code == 409
    assert response.json()["code"] == "cart_merged"


def test_login_merges_guest_cart(customer):
    variant = stocked_variant()
    shopper = Shopper()
    shopper.new_cart()
    shopper.add(variant.sku, 2)

    response = shopper.client.post(
        "/api/v1/auth/login/",
        {"username": "ada", "password": "correct horse battery", "cart_id": shopper.cart_id},
        format="json",
        **shopper.headers(),
    )

    assert response.status_code == 200
    customer_cart = Cart.objects.get(user=customer, status="open")
    assert response.json()["cart_id"] == str(customer_cart.pk)
    assert quantities(customer_cart) == {variant.sku: 2}


def test_login_wrong_password_401(customer):
    response = Shopper().client.post(
        "/api/v1/auth/login/", {"username": "ada", "password": "wrong password!"}, format="json"
    )

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_credentials"

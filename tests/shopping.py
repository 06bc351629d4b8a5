"""Helpers that drive the shop through its HTTP API, as a client would."""
from __future__ import annotations

import uuid
from decimal import Decimal

from rest_framework.test import APIClient

from inventory import services as inventory
from tests.factories import ProductFactory


def stocked_variant(*, price: str = "10.00", on_hand: int = 10, title: str | None = None):
    """Create a published product with one variant and `on_hand` units; return the variant."""
    kwargs = {"prices": [price]}
    if title:
        kwargs["title"] = title
    product = ProductFactory(**kwargs)
    variant = product.variants.get()
    if on_hand:
        inventory.receive(sku=variant.sku, quantity=on_hand, reason="test stock", actor="tests")
    return variant


class Shopper:
    """A guest shopper with their own API client and cart token."""

    def __init__(self, client: APIClient | None = None) -> None:
        self.client = client or APIClient()
        self.cart_id: str | None = None
        self.token: str | None = None

    def headers(self, key: str | None = None) -> dict[str, str]:
        headers = {"HTTP_X_CART_TOKEN": self.token} if self.token else {}
        if key is not None:
            headers["HTTP_IDEMPOTENCY_KEY"] = key
        return headers

    def new_cart(self) -> dict:
        response = self.client.post("/api/v1/carts/", format="json")
        assert response.status_code == 201, response.content
        body = response.json()
        self.cart_id, self.token = body["id"], body["token"]
        return body

    def add(self, sku: str, quantity: int = 1):
        return self.client.post(
            f"/api/v1/carts/{self.cart_id}/items/", {"sku": sku, "quantity": quantity}, format="json", **self.headers()
        )

    def cart(self):
        return self.client.get(f"/api/v1/carts/{self.cart_id}/", **self.headers())

    def checkout(self, key: str | None = None, expected_total: Decimal | str | None = None):
        body: dict = {"cart_id": self.cart_id}
        if expected_total is not None:
            body["expected_total"] = str(expected_total)
        return self.client.post(
            "/api/v1/checkout/", body, format="json", **self.headers(key or str(uuid.uuid4()))
        )

    def order(self, order_id: str):
        return self.client.get(f"/api/v1/orders/{order_id}/", **self.headers())

    def pay(self, order_id: str, key: str | None = None):
        return self.client.post(
            f"/api/v1/orders/{order_id}/payments/", {}, format="json", **self.headers(key or str(uuid.uuid4()))
        )

    def cancel(self, order_id: str, key: str | None = None):
        return self.client.post(
            f"/api/v1/orders/{order_id}/cancel/", {}, format="json", **self.headers(key or str(uuid.uuid4()))
        )

    def refund(self, order_id: str, amount: str, restock: list | None = None, key: str | None = None):
        return self.client.post(
            f"/api/v1/orders/{order_id}/refunds/",
            {"amount": amount, "restock": restock or []},
            format="json",
            **self.headers(key or str(uuid.uuid4())),
        )

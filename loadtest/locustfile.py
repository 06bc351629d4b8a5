"""Locust scenarios for the storefront API.

Run through `make loadtest USERS=.. DURATION=..` (headless, against the demo
stack), or `locust -f loadtest/locustfile.py --host http://127.0.0.1:28000`.

The default mix: mostly browsing, some cart building, fewer full purchases,
and a flash sale where many buyers race for one hot SKU. Class weights set the
mix; LOADTEST_HOT_SKU picks the flash-sale SKU (default: the first in-stock
SKU by name, the same for every user).
"""
from __future__ import annotations

import os
import random
import time
import uuid

from locust import HttpUser, between, events, task

CATALOG: dict[str, list] = {"skus": [], "slugs": [], "categories": []}


@events.test_start.add_listener
def load_catalog(environment, **kwargs):
    """Read SKUs, product slugs and categories once, so users pick real ones."""
    import requests

    host = environment.host.rstrip("/")
    session = requests.Session()
    session.trust_env = False
    page = 1
    while page <= 5:
        response = session.get(
            f"{host}/api/v1/products/", params={"in_stock": "true", "page_size": 100, "page": page}, timeout=30
        )
        if response.status_code != 200:
            break
        body = response.json()
        for product in body["results"]:
            CATALOG["slugs"].append(product["slug"])
            CATALOG["skus"].extend(variant["sku"] for variant in product["variants"] if variant["available"] > 0)
        if not body["next"]:
            break
        page += 1
    categories = session.get(f"{host}/api/v1/categories/", timeout=30)
    if categories.status_code == 200:
        CATALOG["categories"] = [category["slug"] for category in categories.json()]
    if not CATALOG["skus"]:
        raise RuntimeError("no in-stock SKUs in the catalog; start the demo with a catalog first")


def hot_sku() -> str:
    return os.environ.get("LOADTEST_HOT_SKU") or sorted(CATALOG["skus"])[0]


class Shopper(HttpUser):
    """Shared helpers: a guest cart with its token and idempotent POSTs that retry on timeouts."""

    abstract = True
    wait_time = between(0.5, 2.0)

    def on_start(self) -> None:
        self.cart_id: str | None = None
        self.token: str | None = None

    def new_cart(self) -> None:
        response = self.client.post("/api/v1/carts/", json={}, name="POST /carts/")
        body = response.json()
        self.cart_id, self.token = body["id"], body["token"]

    def cart_headers(self) -> dict[str, str]:
        return {"X-Cart-Token": self.token} if self.token else {}

    def add_item(self, sku: str, quantity: int = 1):
        return self.client.post(
            f"/api/v1/carts/{self.cart_id}/items/",
            json={"sku": sku, "quantity": quantity},
            headers=self.cart_headers(),
            name="POST /carts/{id}/items/",
        )

    def idempotent_post(self, path: str, body: dict, name: str, attempts: int = 3):
        """POST with one Idempotency-Key, retrying the same key on timeouts and 409 in-progress responses."""
        key = str(uuid.uuid4())
        response = None
        for attempt in range(attempts):
            with self.client.post(
                path,
                json=body,
                headers={**self.cart_headers(), "Idempotency-Key": key},
                name=name,
                timeout=10,
                catch_response=True,
            ) as response:
                code = response.json().get("code") if response.status_code >= 400 and response.text else None
                if response.status_code == 0 or code == "idempotency_key_in_progress":
                    response.success()
                    time.sleep(0.5 * (attempt + 1))
                    continue
                # Business refusals (out of stock, price changed) are correct responses under load.
                if response.status_code in (409, 422):
                    response.success()
                return response
        return response


class Browser(Shopper):
    weight = 6

    @task(5)
    def list_products(self) -> None:
        params = {"page_size": random.choice([12, 24, 48])}
        if CATALOG["categories"] and random.random() < 0.4:
            params["category"] = random.choice(CATALOG["categories"])
        if random.random() < 0.3:
            params["ordering"] = random.choice(["price", "-price", "name", "-created"])
        if random.random() < 0.2:
            params["in_stock"] = "true"
        self.client.get("/api/v1/products/", params=params, name="GET /products/")

    @task(4)
    def product_detail(self) -> None:
        slug = random.choice(CATALOG["slugs"])
        self.client.get(f"/api/v1/products/{slug}/", name="GET /products/{slug}/")

    @task(1)
    def categories(self) -> None:
        self.client.get("/api/v1/categories/", name="GET /categories/")


class CartBuilder(Shopper):
    weight = 2

    @task
    def build_cart(self) -> None:
        self.new_cart()
        for sku in random.sample(CATALOG["skus"], k=min(3, len(CATALOG["skus"]))):
            self.add_item(sku, random.randint(1, 2))
        self.client.get(f"/api/v1/carts/{self.cart_id}/", headers=self.cart_headers(), name="GET /carts/{id}/")


class Buyer(Shopper):
    weight = 1

    @task
    def purchase(self) -> None:
        self.new_cart()
        self.add_item(random.choice(CATALOG["skus"]), 1)
        self.client.get(f"/api/v1/carts/{self.cart_id}/", headers=self.cart_headers(), name="GET /carts/{id}/")
        placed = self.idempotent_post("/api/v1/checkout/", {"cart_id": self.cart_id}, "POST /checkout/")
        if placed is None or placed.status_code != 201:
            return
        order_id = placed.json()["id"]
        paying = self.idempotent_post(f"/api/v1/orders/{order_id}/payments/", {}, "POST /orders/{id}/payments/")
        if paying is None or paying.status_code != 202:
            return
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            order = self.client.get(f"/api/v1/orders/{order_id}/", headers=self.cart_headers(), name="GET /orders/{id}/")
            if order.status_code == 200 and order.json()["state"] != "pending_payment":
                return
            time.sleep(1)


class FlashSaleBuyer(Shopper):
    """Many buyers, one SKU: the database must refuse every unit past the last."""

    weight = 1

    @task
    def grab_hot_sku(self) -> None:
        self.new_cart()
        added = self.add_item(hot_sku(), 1)
        if added.status_code != 201:
            return
        self.idempotent_post("/api/v1/checkout/", {"cart_id": self.cart_id}, "POST /checkout/ (flash sale)")

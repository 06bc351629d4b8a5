"""Cart endpoints: durable in PostgreSQL, guarded by the guest token, with clear errors."""
import pytest
import redis
from django.conf import settings

from cart.models import Cart, CartItem
from tests.shopping import Shopper, stocked_variant

pytestmark = pytest.mark.django_db


@pytest.fixture
def shopper() -> Shopper:
    shopper = Shopper()
    shopper.new_cart()
    return shopper


def test_cart_create_returns_token(shopper):
    cart = Cart.objects.get(pk=shopper.cart_id)

    assert len(shopper.token) >= 40
    assert cart.token == shopper.token
    assert cart.status == "open"


def test_cart_add_shows_catalog_price(shopper):
    variant = stocked_variant(price="12.50", on_hand=3)

    response = shopper.add(variant.sku, 2)
    body = response.json()

    assert response.status_code == 201
    assert body["items"][0]["sku"] == variant.sku
    assert body["items"][0]["unit_price"] == "12.50"
    assert body["items"][0]["line_total"] == "25.00"
    assert body["items"][0]["available"] == 3
    assert body["total"] == "25.00"
    assert body["currency"] == "USD"


def test_cart_add_same_sku_adds_up(shopper):
    variant = stocked_variant()
    shopper.add(variant.sku, 2)

    body = shopper.add(variant.sku, 3).json()

    assert len(body["items"]) == 1
    assert body["items"][0]["quantity"] == 5


def test_cart_add_unknown_sku_404(shopper):
    response = shopper.add("NO-SUCH-SKU", 1)

    assert response.status_code == 404
    assert response.json()["code"] == "sku_not_found"
    assert response.json()["field"] == "sku"


@pytest.mark.parametrize("quantity", [0, -1, 101, "two", 1.5])
def test_cart_add_bad_quantity_400(shopper, quantity):
    variant = stocked_variant()

    response = shopper.add(variant.sku, quantity)

    assert response.status_code == 400
    assert response.json()["field"] == "quantity"
    assert not CartItem.objects.exists()


def test_cart_patch_and_delete_item(shopper):
    variant = stocked_variant()
    item_id = shopper.add(variant.sku, 1).json()["items"][0]["id"]
    url = f"/api/v1/carts/{shopper.cart_id}/items/{item_id}/"

    patched = shopper.client.patch(url, {"quantity": 4}, format="json", **shopper.headers())
    deleted = shopper.client.delete(url, **shopper.headers())

    assert patched.json()["items"][0]["quantity"] == 4
    assert deleted.json()["items"] == []


def test_cart_patch_unknown_item_404(shopper):
    url = f"/api/v1/carts/{shopper.cart_id}/items/999999/"

    response = shopper.client.patch(url, {"quantity": 1}, format="json", **shopper.headers())

    assert response.status_code == 404
    assert response.json()["code"] == "cart_item_not_found"


def test_cart_requires_token(shopper):
    stranger = Shopper()
    stranger.cart_id = shopper.cart_id
    stranger.token = "not-the-token"

    response = stranger.cart()

    assert response.status_code == 404
    assert response.json()["code"] == "cart_not_found"


def test_cart_survives_redis_flush(shopper):
    variant = stocked_variant()
    shopper.add(variant.sku, 2)

    redis.Redis.from_url(settings.REDIS_URL).flushdb()
    response = shopper.cart()

    assert response.status_code == 200
    assert response.json()["items"][0]["quantity"] == 2


def test_cart_writable_with_services_down(shopper, settings):
    from tests.services import closed_port

    # Kafka, OpenSearch, Celery's broker and the payment provider all unreachable.
    settings.KAFKA_BOOTSTRAP_SERVERS = f"127.0.0.1:{closed_port()}"
    settings.OPENSEARCH_URL = f"http://127.0.0.1:{closed_port()}"
    settings.PAYMENT_PROVIDER_URL = f"http://127.0.0.1:{closed_port()}"
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{closed_port()}/1"
    variant = stocked_variant()

    response = shopper.add(variant.sku, 1)

    assert response.status_code == 201

"""Browse, cart, checkout and pay over real HTTP, with a real Celery worker, Redis, PostgreSQL and the provider simulator.

The API runs in pytest-django's live server; the simulator sends its signed
webhooks to it, and a worker subprocess runs the capture task against the
test database.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

import pytest
import requests
from django.db import connection

from commerce.celery import app as celery_app
from payments.models import Capture, ProcessedWebhook
from tests.provider import REPO, start_provider
from tests.shopping import stocked_variant

pytestmark = pytest.mark.django_db(transaction=True)

API_KEY = "sk_test_end_to_end"
WEBHOOK_SECRET = "whsec_test_end_to_end"


@pytest.fixture
def shop_stack(live_server, settings, tmp_path):
    """Start the simulator (webhooks to the live server) and a Celery worker on a queue of this test's own."""
    provider = start_provider(
        webhook_url=f"{live_server.url}/api/v1/payments/webhooks/provider/",
        api_key=API_KEY,
        webhook_secret=WEBHOOK_SECRET,
        log_dir=tmp_path,
    )
    queue = f"e2e-{uuid.uuid4().hex[:8]}"
    settings.PAYMENT_PROVIDER_URL = provider.url
    settings.PAYMENT_PROVIDER_API_KEY = API_KEY
    settings.PAYMENT_WEBHOOK_SECRET = WEBHOOK_SECRET
    previous_queue = celery_app.conf.task_default_queue
    celery_app.conf.task_default_queue = queue

    db = connection.settings_dict
    worker_env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "PAYMENT_PROVIDER_URL": provider.url,
        "PAYMENT_PROVIDER_API_KEY": API_KEY,
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "LOG_FORMAT": "console",
    }
    worker_log = (tmp_path / "worker.log").open("wb")
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "commerce", "worker", "--pool", "solo", "-Q", queue, "--loglevel", "INFO"],
        cwd=REPO,
        env=worker_env,
        stdout=worker_log,
        stderr=worker_log,
    )
    try:
        yield live_server.url
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
        worker_log.close()
        provider.stop()
        celery_app.conf.task_default_queue = previous_queue


def wait_for(predicate, *, timeout: float, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


def test_purchase_end_to_end(shop_stack):
    base = shop_stack
    variant = stocked_variant(price="42.00", on_hand=3, title="Enamel Mug")
    http = requests.Session()
    http.trust_env = False

    products = http.get(f"{base}/api/v1/products/", timeout=10).json()
    assert products["results"][0]["variants"][0]["sku"] == variant.sku

    cart = http.post(f"{base}/api/v1/carts/", json={}, timeout=10).json()
    headers = {"X-Cart-Token": cart["token"]}
    added = http.post(
        f"{base}/api/v1/carts/{cart['id']}/items/", json={"sku": variant.sku, "quantity": 2}, headers=headers, timeout=10
    )
    assert added.status_code == 201

    placed = http.post(
        f"{base}/api/v1/checkout/",
        json={"cart_id": cart["id"]},
        headers={**headers, "Idempotency-Key": str(uuid.uuid4())},
        timeout=10,
    )
    assert placed.status_code == 201, placed.text
    order_id = placed.json()["id"]

    paying = http.post(
        f"{base}/api/v1/orders/{order_id}/payments/",
        json={},
        headers={**headers, "Idempotency-Key": str(uuid.uuid4())},
        timeout=10,
    )
    assert paying.status_code == 202, paying.text

    def order_state():
        return http.get(f"{base}/api/v1/orders/{order_id}/", headers=headers, timeout=10).json()["state"] == "paid"

    assert wait_for(order_state, timeout=60), "the order did not reach paid within 60 s"
    assert Capture.objects.filter(order_id=order_id).count() == 1
    # The provider's webhooks arrive too; whichever path came second is a no-op.
    assert wait_for(lambda: ProcessedWebhook.objects.filter(event_type="payment_intent.succeeded").exists(), timeout=30)
    assert Capture.objects.filter(order_id=order_id).count() == 1

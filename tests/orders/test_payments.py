"""Paying for orders: exactly one capture, whatever clients, workers and the provider's webhooks do.

The provider is the real simulator process. The Celery worker is played by
the test: it calls the capture task the way a worker would, including twice
and after a crash, so each interleaving is deterministic.
"""
import json
import time
from decimal import Decimal

import pytest

from commerce.models import OutboxEvent
from inventory.models import StockItem
from orders.models import Order
from payments import gateway as gateway_module
from payments import tasks
from payments.models import Capture, PaymentIntent, ProcessedWebhook, Refund
from payments.reconciliation import reconcile_payments
from payments.signatures import sign
from tests.concurrency import run_concurrently
from tests.orders.conftest import WEBHOOK_SECRET
from tests.shopping import Shopper, stocked_variant

WEBHOOK_URL = "/api/v1/payments/webhooks/provider/"


def place_order(quantity: int = 1, price: str = "25.00", on_hand: int = 5) -> tuple[Shopper, dict, str]:
    variant = stocked_variant(price=price, on_hand=on_hand)
    shopper = Shopper()
    shopper.new_cart()
    shopper.add(variant.sku, quantity)
    response = shopper.checkout()
    assert response.status_code == 201, response.content
    return shopper, response.json(), variant.sku


def start_payment(shopper: Shopper, order: dict, queued) -> PaymentIntent:
    response = queued.run(lambda: shopper.pay(order["id"]))
    assert response.status_code == 202, response.content
    assert queued[-1] == ("capture", response.json()["id"])
    return PaymentIntent.objects.get(pk=response.json()["id"])


def deliver(client, event: dict, secret: str = WEBHOOK_SECRET):
    body = json.dumps(event).encode()
    header = sign(body, secret, int(time.time()))
    return client.generic("POST", WEBHOOK_URL, body, content_type="application/json", HTTP_PROVIDER_SIGNATURE=header)


def provider_event(event_id: str, event_type: str, intent: dict) -> dict:
    return {"id": event_id, "type": event_type, "created": time.time(), "data": {"object": intent}}


def assert_paid_once(order_id: str) -> None:
    assert Order.objects.get(pk=order_id).state == "paid"
    assert Capture.objects.filter(order_id=order_id).count() == 1
    assert OutboxEvent.objects.filter(event_type="order.paid", aggregate_id=order_id).count() == 1


@pytest.mark.django_db
def test_pay_captures_and_marks_paid(provider, queued_captures):
    shopper, order, sku = place_order(quantity=2)
    intent = start_payment(shopper, order, queued_captures)

    outcome = tasks.capture_payment(str(intent.pk))

    assert outcome == "captured"
    assert_paid_once(order["id"])
    capture = Capture.objects.get(order_id=order["id"])
    assert capture.amount == Decimal("50.00")
    assert capture.source == "task"
    stock = StockItem.objects.get(sku=sku)
    assert stock.on_hand == 3
    assert stock.reserved == 0
    assert len(provider.intents(str(intent.pk))) == 1
    assert shopper.order(order["id"]).json()["state"] == "paid"


@pytest.mark.django_db
def test_pay_requires_key(provider, queued_captures):
    shopper, order, _ = place_order()

    url = f"/api/v1/orders/{order['id']}/payments/"
    response = queued_captures.run(lambda: shopper.client.post(url, {}, format="json", **shopper.headers()))

    assert response.status_code == 400
    assert response.json()["code"] == "idempotency_key_missing"
    assert queued_captures == []


@pytest.mark.django_db
def test_pay_replay_same_key(provider, queued_captures):
    shopper, order, _ = place_order()
    first = queued_captures.run(lambda: shopper.pay(order["id"], key="pay-1"))

    second = queued_captures.run(lambda: shopper.pay(order["id"], key="pay-1"))

    assert second.status_code == 202
    assert second["Idempotent-Replayed"] == "true"
    assert second.json() == first.json()
    assert PaymentIntent.objects.count() == 1
    assert len(queued_captures) == 1


@pytest.mark.django_db
def test_second_pay_other_key_409(provider, queued_captures):
    shopper, order, _ = place_order()
    start_payment(shopper, order, queued_captures)

    response = queued_captures.run(lambda: shopper.pay(order["id"], key="another-key"))

    assert response.status_code == 409
    assert response.json()["code"] == "payment_in_progress"
    assert PaymentIntent.objects.count() == 1


@pytest.mark.django_db
def test_declined_then_new_payment(provider, queued_captures):
    shopper, order, _ = place_order()
    provider.set_faults(next_capture_outcomes=["decline"])
    first = start_payment(shopper, order, queued_captures)

    assert tasks.capture_payment(str(first.pk)) == "declined"
    first.refresh_from_db()
    assert first.status == "failed"
    assert first.failure_code == "card_declined"
    assert Order.objects.get(pk=order["id"]).state == "pending_payment"

    second = start_payment(shopper, order, queued_captures)
    assert tasks.capture_payment(str(second.pk)) == "captured"
    assert_paid_once(order["id"])


@pytest.mark.django_db
def test_timeout_capture_went_through(provider, queued_captures, settings):
    shopper, order, _ = place_order()
    # The provider captures, then responds after the client gave up.
    provider.set_faults(next_capture_outcomes=["timeout"], timeout_delay_ms=2500)
    settings.PAYMENT_PROVIDER_TIMEOUT_SECONDS = 0.5
    intent = start_payment(shopper, order, queued_captures)

    with pytest.raises(gateway_module.GatewayTimeout):
        tasks.capture_payment(str(intent.pk))
    assert Order.objects.get(pk=order["id"]).state == "pending_payment"

    # Celery's retry: the same idempotency key returns the capture that already happened.
    time.sleep(2.5)
    assert tasks.capture_payment(str(intent.pk)) == "captured"

    assert_paid_once(order["id"])
    remote = provider.intents(str(intent.pk))
    assert len(remote) == 1
    assert remote[0]["amount_captured"] == 2500


@pytest.mark.django_db
@pytest.mark.parametrize("crash_point", ["after_create", "after_capture", "in_commit"])
def test_crash_between_capture_and_paid(provider, queued_captures, monkeypatch, crash_point):
    shopper, order, _ = place_order()
    intent = start_payment(shopper, order, queued_captures)

    class WorkerCrash(Exception):
        pass

    def crash(*args, **kwargs):
        raise WorkerCrash(crash_point)

    if crash_point == "after_create":
        # The provider created the intent, the worker died before storing its id.
        monkeypatch.setattr(tasks, "payment_record_provider_intent", crash)
    elif crash_point == "after_capture":
        # The provider captured, the worker died before recording anything.
        monkeypatch.setattr(tasks, "payment_apply_capture", crash)
    else:
        # The worker recorded the capture, then died inside the order transition: all of it rolls back.
        monkeypatch.setattr("payments.services.order_mark_paid", crash)

    with pytest.raises(WorkerCrash):
        tasks.capture_payment(str(intent.pk))
    assert not Capture.objects.exists()
    assert Order.objects.get(pk=order["id"]).state == "pending_payment"

    monkeypatch.undo()
    assert tasks.capture_payment(str(intent.pk)) == "captured"

    assert_paid_once(order["id"])
    remote = provider.intents(str(intent.pk))
    assert len(remote) == 1
    assert remote[0]["status"] == "succeeded"


@pytest.mark.django_db
def test_task_twice_records_once(provider, queued_captures):
    shopper, order, _ = place_order()
    intent = start_payment(shopper, order, queued_captures)

    assert tasks.capture_payment(str(intent.pk)) == "captured"
    assert tasks.capture_payment(str(intent.pk)) == "skipped"

    assert_paid_once(order["id"])


@pytest.mark.django_db
def test_reconcile_settles_lost_capture(provider, queued_captures, monkeypatch):
    shopper, order, _ = place_order()
    intent = start_payment(shopper, order, queued_captures)
    monkeypatch.setattr(tasks, "payment_apply_capture", lambda **kwargs: (_ for _ in ()).throw(RuntimeError("crash")))
    with pytest.raises(RuntimeError):
        tasks.capture_payment(str(intent.pk))
    monkeypatch.undo()

    report = reconcile_payments(older_than_seconds=0)

    assert report.captured == [str(intent.pk)]
    assert_paid_once(order["id"])
    assert Capture.objects.get(order_id=order["id"]).source == "reconcile"


@pytest.mark.django_db
def test_reconcile_command_runs(provider, queued_captures):
    from io import StringIO

    from django.core.management import call_command

    stdout = StringIO()
    call_command("reconcile_payments", "--json", stdout=stdout)

    assert json.loads(stdout.getvalue())["captured"] == []


@pytest.mark.django_db
def test_webhook_bad_signature_400(provider, queued_captures, api_client):
    shopper, order, _ = place_order()
    intent = start_payment(shopper, order, queued_captures)
    fake = provider_event(
        "evt_forged",
        "payment_intent.succeeded",
        {"id": "pi_x", "merchant_reference": str(intent.pk), "latest_charge": "ch_x", "amount_captured": 2500},
    )

    response = deliver(api_client, fake, secret="not-the-secret")

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_signature"
    assert not ProcessedWebhook.objects.exists()
    assert not Capture.objects.exists()
    assert Order.objects.get(pk=order["id"]).state == "pending_payment"


def _captured_remotely(provider, queued, shopper, order, gateway_settings) -> tuple[PaymentIntent, dict]:
    """Capture at the provider without recording it locally, and return the provider's intent."""
    intent = start_payment(shopper, order, queued)
    gateway = gateway_module.SimulatorGateway(provider.url, gateway_settings.PAYMENT_PROVIDER_API_KEY, timeout_seconds=5)
    remote = gateway.create_intent(
        amount_minor=2500, currency="USD", merchant_reference=str(intent.pk), idempotency_key=f"intent-{intent.pk}-create"
    )
    gateway.capture(provider_intent_id=remote.id, idempotency_key=f"intent-{intent.pk}-capture")
    gateway.close()
    return intent, provider.intents(str(intent.pk))[0]


@pytest.mark.django_db
def test_webhook_duplicates_apply_once(provider, queued_captures, api_client, settings):
    shopper, order, _ = place_order()
    intent, remote = _captured_remotely(provider, queued_captures, shopper, order, settings)
    event = provider_event("evt_dup", "payment_intent.succeeded", remote)

    outcomes = [deliver(api_client, event).json()["outcome"] for _ in range(3)]

    assert outcomes == ["applied", "duplicate", "duplicate"]
    assert_paid_once(order["id"])
    assert Capture.objects.get().source == "webhook"


@pytest.mark.django_db
def test_webhooks_out_of_order_never_go_back(provider, queued_captures, api_client, settings):
    shopper, order, _ = place_order()
    intent, remote = _captured_remotely(provider, queued_captures, shopper, order, settings)
    failed_snapshot = {**remote, "status": "failed", "last_payment_error": {"code": "card_declined"}}
    created_snapshot = {**remote, "status": "requires_capture", "latest_charge": None, "amount_captured": 0}

    succeeded = deliver(api_client, provider_event("evt_2", "payment_intent.succeeded", remote))
    late_failure = deliver(api_client, provider_event("evt_1", "payment_intent.payment_failed", failed_snapshot))
    late_created = deliver(api_client, provider_event("evt_0", "payment_intent.created", created_snapshot))

    assert succeeded.json()["outcome"] == "applied"
    assert late_failure.status_code == 200
    assert late_failure.json()["outcome"] == "stale"
    assert late_created.json()["outcome"] == "stale"
    intent.refresh_from_db()
    assert intent.status == "succeeded"
    assert_paid_once(order["id"])


@pytest.mark.django_db
def test_webhook_for_unknown_payment_acknowledged(provider, api_client):
    event = provider_event("evt_unknown", "payment_intent.succeeded", {"id": "pi_1", "merchant_reference": "nope"})

    response = deliver(api_client, event)

    assert response.status_code == 200
    assert response.json()["outcome"] == "unknown_payment"


@pytest.mark.django_db(transaction=True)
def test_task_and_webhook_race_one_capture(provider, queued_captures, settings):
    from rest_framework.test import APIClient

    shopper, order, _ = place_order()
    intent, remote = _captured_remotely(provider, queued_captures, shopper, order, settings)
    event = provider_event("evt_race", "payment_intent.succeeded", remote)

    results = run_concurrently(
        [
            lambda: tasks.capture_payment(str(intent.pk)),
            lambda: deliver(APIClient(), event).json()["outcome"],
            lambda: deliver(APIClient(), event).json()["outcome"],
        ]
    )

    assert not [result for result in results if isinstance(result, Exception)], results
    assert_paid_once(order["id"])


@pytest.mark.django_db(transaction=True)
def test_concurrent_pay_requests_one_intent(provider, queued_captures):
    shopper, order, _ = place_order()

    def pay():
        from rest_framework.test import APIClient

        clone = Shopper(APIClient())
        clone.cart_id, clone.token = shopper.cart_id, shopper.token
        return clone.pay(order["id"])

    responses = run_concurrently([pay for _ in range(10)])

    statuses = sorted(response.status_code for response in responses)
    assert statuses.count(202) == 1
    assert set(statuses) == {202, 409}
    assert PaymentIntent.objects.filter(order_id=order["id"]).count() == 1


@pytest.mark.django_db
def test_cancel_while_paying_409(provider, queued_captures):
    shopper, order, _ = place_order()
    start_payment(shopper, order, queued_captures)

    response = shopper.cancel(order["id"])

    assert response.status_code == 409
    assert response.json()["code"] == "payment_in_progress"


@pytest.mark.django_db
def test_capture_after_expiry_refunds(provider, queued_captures):
    from orders.services import order_expire

    shopper, order, sku = place_order()
    intent = start_payment(shopper, order, queued_captures)
    # The order expired while the provider was slow (forced here past the active-payment guard).
    order_expire(order_id=order["id"])

    assert queued_captures.run(lambda: tasks.capture_payment(str(intent.pk))) == "captured"

    assert Order.objects.get(pk=order["id"]).state == "expired"
    refund = Refund.objects.get(order_id=order["id"])
    assert refund.updates_order is False
    assert queued_captures[-1] == ("refund", str(refund.pk))
    assert tasks.refund_payment(str(refund.pk)) == "refunded"
    assert provider.intents(str(intent.pk))[0]["amount_refunded"] == 2500
    assert StockItem.objects.get(sku=sku).reserved == 0


@pytest.mark.django_db
def test_refund_partial_then_full_restocks(provider, queued_captures):
    shopper, order, sku = place_order(quantity=2)
    intent = start_payment(shopper, order, queued_captures)
    tasks.capture_payment(str(intent.pk))

    first = queued_captures.run(lambda: shopper.refund(order["id"], "20.00", restock=[{"sku": sku, "quantity": 1}]))
    assert queued_captures[-1] == ("refund", first.json()["id"])
    tasks.refund_payment(first.json()["id"])
    assert Order.objects.get(pk=order["id"]).state == "partially_refunded"
    assert StockItem.objects.get(sku=sku).on_hand == 4

    too_much = shopper.refund(order["id"], "30.01")
    assert too_much.status_code == 400
    assert too_much.json()["code"] == "refund_amount_invalid"

    rest = queued_captures.run(lambda: shopper.refund(order["id"], "30.00"))
    tasks.refund_payment(rest.json()["id"])
    final = Order.objects.get(pk=order["id"])
    assert final.state == "refunded"
    assert final.refunded_total == Decimal("50.00")
    assert provider.intents(str(intent.pk))[0]["amount_refunded"] == 5000


@pytest.mark.django_db
def test_refund_unpaid_order_409(provider, queued_captures):
    shopper, order, _ = place_order()

    response = shopper.refund(order["id"], "1.00")

    assert response.status_code == 409
    assert response.json()["code"] == "order_not_refundable"

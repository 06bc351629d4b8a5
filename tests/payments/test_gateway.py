"""SimulatorGateway against a real simulator process: results, errors and at-most-once capture."""
from __future__ import annotations

import threading
import time
import uuid

import pytest

from payments.gateway import (
    CaptureResult,
    GatewayError,
    GatewayRejected,
    GatewayTimeout,
    GatewayUnavailable,
    IdempotencyKeyInUse,
    PaymentDeclined,
    SimulatorGateway,
    get_gateway,
)
from tests.payments.conftest import API_KEY
from tests.services import closed_port


def new_key(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4()}"


def create_intent(gateway: SimulatorGateway, amount_minor: int = 2599, reference: str | None = None):
    return gateway.create_intent(
        amount_minor=amount_minor,
        currency="USD",
        merchant_reference=reference or new_key("order"),
        idempotency_key=new_key("create"),
    )


def test_create_and_capture_happy_path(gateway):
    reference = new_key("order")
    intent = gateway.create_intent(
        amount_minor=2599, currency="usd", merchant_reference=reference, idempotency_key=new_key("create")
    )

    assert intent.id.startswith("pi_")
    assert intent.status == "requires_capture"
    assert intent.amount_minor == 2599
    assert intent.currency == "USD"
    assert intent.merchant_reference == reference
    assert intent.amount_captured_minor == 0
    assert intent.transaction_id is None

    result = gateway.capture(provider_intent_id=intent.id, idempotency_key=new_key("capture"))

    assert isinstance(result, CaptureResult)
    assert result.provider_intent_id == intent.id
    assert result.transaction_id.startswith("ch_")
    assert result.amount_captured_minor == 2599
    assert result.intent.is_succeeded
    assert result.replayed is False

    fetched = gateway.get_intent(provider_intent_id=intent.id)
    assert fetched.status == "succeeded"
    assert fetched.transaction_id == result.transaction_id
    assert fetched.amount_captured_minor == 2599


def test_create_intent_replay_returns_same_intent(gateway):
    reference = new_key("order")
    key = new_key("create")

    first = gateway.create_intent(amount_minor=1000, currency="EUR", merchant_reference=reference, idempotency_key=key)
    second = gateway.create_intent(amount_minor=1000, currency="EUR", merchant_reference=reference, idempotency_key=key)

    assert second == first
    assert [intent.id for intent in gateway.find_intents(merchant_reference=reference)] == [first.id]


def test_capture_replay_charges_once(gateway):
    intent = create_intent(gateway)
    key = new_key("capture")

    first = gateway.capture(provider_intent_id=intent.id, idempotency_key=key)
    second = gateway.capture(provider_intent_id=intent.id, idempotency_key=key)

    assert second.transaction_id == first.transaction_id
    assert first.replayed is False
    assert second.replayed is True
    fetched = gateway.get_intent(provider_intent_id=intent.id)
    assert fetched.amount_captured_minor == intent.amount_minor
    assert fetched.transaction_id == first.transaction_id


def test_key_reuse_with_different_body_rejected(gateway):
    key = new_key("create")
    reference = new_key("order")
    gateway.create_intent(amount_minor=1000, currency="USD", merchant_reference=reference, idempotency_key=key)

    with pytest.raises(GatewayRejected) as caught:
        gateway.create_intent(amount_minor=2000, currency="USD", merchant_reference=reference, idempotency_key=key)

    assert caught.value.status_code == 422
    assert caught.value.code == "idempotency_key_reused"
    assert len(gateway.find_intents(merchant_reference=reference)) == 1


def test_key_reuse_on_other_endpoint_rejected(gateway):
    key = new_key("shared")
    intent = gateway.create_intent(
        amount_minor=1000, currency="USD", merchant_reference=new_key("order"), idempotency_key=key
    )

    with pytest.raises(GatewayRejected) as caught:
        gateway.capture(provider_intent_id=intent.id, idempotency_key=key)

    assert caught.value.code == "idempotency_key_reused"
    assert gateway.get_intent(provider_intent_id=intent.id).status == "requires_capture"


def test_decline_fails_intent(gateway, simulator):
    intent = create_intent(gateway)
    simulator.set_faults(next_capture_outcomes=["decline"])
    key = new_key("capture")

    with pytest.raises(PaymentDeclined) as caught:
        gateway.capture(provider_intent_id=intent.id, idempotency_key=key)

    assert caught.value.code == "card_declined"
    assert caught.value.decline_code == "generic_decline"
    assert caught.value.retryable is False
    assert caught.value.intent is not None
    assert caught.value.intent.status == "failed"

    fetched = gateway.get_intent(provider_intent_id=intent.id)
    assert fetched.is_failed
    assert fetched.decline_code == "card_declined"
    assert fetched.transaction_id is None
    assert fetched.amount_captured_minor == 0

    # The saved 402 is replayed for the same key, so a retried task gets the same decline.
    with pytest.raises(PaymentDeclined):
        gateway.capture(provider_intent_id=intent.id, idempotency_key=key)

    with pytest.raises(GatewayRejected) as again:
        gateway.capture(provider_intent_id=intent.id, idempotency_key=new_key("capture"))
    assert again.value.status_code == 409
    assert again.value.code == "payment_intent_failed"


def test_decline_rate_one_declines(gateway, simulator):
    intent = create_intent(gateway)
    simulator.set_faults(decline_rate=1.0)

    with pytest.raises(PaymentDeclined):
        gateway.capture(provider_intent_id=intent.id, idempotency_key=new_key("capture"))


def test_timeout_that_captured_is_recovered(simulator):
    reference = new_key("order")
    with SimulatorGateway(simulator.url, API_KEY, timeout_seconds=0.5) as gateway:
        intent = gateway.create_intent(
            amount_minor=4200, currency="USD", merchant_reference=reference, idempotency_key=new_key("create")
        )
        simulator.set_faults(next_capture_outcomes=["timeout"], timeout_delay_ms=1500)
        key = new_key("capture")

        started = time.monotonic()
        with pytest.raises(GatewayTimeout) as caught:
            gateway.capture(provider_intent_id=intent.id, idempotency_key=key)
        assert time.monotonic() - started < 1.4
        assert caught.value.retryable is True

        # The provider captured even though the client gave up waiting.
        found = gateway.find_intents(merchant_reference=reference)
        assert [item.id for item in found] == [intent.id]
        assert found[0].status == "succeeded"
        assert found[0].transaction_id is not None

        retried = gateway.capture(provider_intent_id=intent.id, idempotency_key=key)

    assert retried.replayed is True
    assert retried.transaction_id == found[0].transaction_id
    assert retried.amount_captured_minor == 4200


def test_error_without_processing_then_retry_captures(gateway, simulator):
    intent = create_intent(gateway)
    simulator.set_faults(next_capture_outcomes=["error"])
    key = new_key("capture")

    with pytest.raises(GatewayUnavailable) as caught:
        gateway.capture(provider_intent_id=intent.id, idempotency_key=key)

    assert caught.value.status_code == 500
    assert caught.value.outcome_unknown is True
    assert gateway.get_intent(provider_intent_id=intent.id).status == "requires_capture"

    retried = gateway.capture(provider_intent_id=intent.id, idempotency_key=key)
    assert retried.replayed is False
    assert retried.intent.is_succeeded


def test_error_after_capture_then_retry_replays(gateway, simulator):
    intent = create_intent(gateway)
    simulator.set_faults(next_capture_outcomes=["error_after_capture"])
    key = new_key("capture")

    with pytest.raises(GatewayUnavailable) as caught:
        gateway.capture(provider_intent_id=intent.id, idempotency_key=key)

    assert caught.value.status_code == 500
    assert caught.value.outcome_unknown is True
    captured = gateway.get_intent(provider_intent_id=intent.id)
    assert captured.status == "succeeded"

    retried = gateway.capture(provider_intent_id=intent.id, idempotency_key=key)
    assert retried.replayed is True
    assert retried.transaction_id == captured.transaction_id


def test_capture_with_new_key_after_success_rejected(gateway):
    intent = create_intent(gateway)
    first = gateway.capture(provider_intent_id=intent.id, idempotency_key=new_key("capture"))

    with pytest.raises(GatewayRejected) as caught:
        gateway.capture(provider_intent_id=intent.id, idempotency_key=new_key("capture"))

    assert caught.value.status_code == 409
    assert caught.value.code == "already_captured"
    fetched = gateway.get_intent(provider_intent_id=intent.id)
    assert fetched.transaction_id == first.transaction_id
    assert fetched.amount_captured_minor == intent.amount_minor


def test_concurrent_captures_charge_once(simulator):
    with SimulatorGateway(simulator.url, API_KEY, timeout_seconds=3.0) as setup:
        intent = create_intent(setup)
    simulator.set_faults(capture_delay_ms=300)
    outcomes: list[object] = []

    def capture() -> None:
        with SimulatorGateway(simulator.url, API_KEY, timeout_seconds=3.0) as client:
            try:
                outcomes.append(client.capture(provider_intent_id=intent.id, idempotency_key=new_key("capture")))
            except GatewayError as error:
                outcomes.append(error)

    threads = [threading.Thread(target=capture) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    successes = [item for item in outcomes if isinstance(item, CaptureResult)]
    rejections = [item for item in outcomes if isinstance(item, GatewayRejected)]
    assert len(successes) == 1, outcomes
    assert len(rejections) == 3, outcomes
    assert {error.code for error in rejections} == {"already_captured"}


def test_same_key_while_running_in_use(simulator):
    with SimulatorGateway(simulator.url, API_KEY, timeout_seconds=3.0) as client:
        intent = create_intent(client)
    simulator.set_faults(capture_delay_ms=800, latency_ms=[0, 0])
    key = new_key("capture")
    first: list[object] = []

    def capture_slowly() -> None:
        with SimulatorGateway(simulator.url, API_KEY, timeout_seconds=3.0) as slow_client:
            first.append(slow_client.capture(provider_intent_id=intent.id, idempotency_key=key))

    thread = threading.Thread(target=capture_slowly)
    thread.start()
    time.sleep(0.3)
    with SimulatorGateway(simulator.url, API_KEY, timeout_seconds=3.0) as client:
        with pytest.raises(IdempotencyKeyInUse) as caught:
            client.capture(provider_intent_id=intent.id, idempotency_key=key)
        thread.join(timeout=5)
        retried = client.capture(provider_intent_id=intent.id, idempotency_key=key)

    assert caught.value.status_code == 409
    assert caught.value.retryable is True
    assert isinstance(caught.value, GatewayUnavailable)
    assert len(first) == 1
    assert retried.transaction_id == first[0].transaction_id
    assert retried.replayed is True


def test_refund_limits(gateway):
    intent = create_intent(gateway, amount_minor=1000)
    gateway.capture(provider_intent_id=intent.id, idempotency_key=new_key("capture"))

    partial = gateway.refund(provider_intent_id=intent.id, amount_minor=600, idempotency_key=new_key("refund"))
    assert partial.id.startswith("re_")
    assert partial.status == "succeeded"
    assert partial.amount_minor == 600
    assert partial.provider_intent_id == intent.id

    with pytest.raises(GatewayRejected) as too_large:
        gateway.refund(provider_intent_id=intent.id, amount_minor=500, idempotency_key=new_key("refund"))
    assert too_large.value.status_code == 400
    assert too_large.value.code == "amount_too_large"

    gateway.refund(provider_intent_id=intent.id, amount_minor=400, idempotency_key=new_key("refund"))
    with pytest.raises(GatewayRejected) as exhausted:
        gateway.refund(provider_intent_id=intent.id, amount_minor=1, idempotency_key=new_key("refund"))
    assert exhausted.value.code == "charge_already_refunded"

    fetched = gateway.get_intent(provider_intent_id=intent.id)
    assert fetched.amount_refunded_minor == 1000
    assert fetched.status == "succeeded"


def test_refund_replay_refunds_once(gateway):
    intent = create_intent(gateway, amount_minor=1000)
    gateway.capture(provider_intent_id=intent.id, idempotency_key=new_key("capture"))
    key = new_key("refund")

    first = gateway.refund(provider_intent_id=intent.id, amount_minor=300, idempotency_key=key)
    second = gateway.refund(provider_intent_id=intent.id, amount_minor=300, idempotency_key=key)

    assert second == first
    assert gateway.get_intent(provider_intent_id=intent.id).amount_refunded_minor == 300


def test_refund_of_uncaptured_intent_rejected(gateway):
    intent = create_intent(gateway)

    with pytest.raises(GatewayRejected) as caught:
        gateway.refund(provider_intent_id=intent.id, amount_minor=100, idempotency_key=new_key("refund"))

    assert caught.value.code == "payment_intent_not_captured"


def test_find_intents_filters_by_reference(gateway):
    reference = new_key("order")
    older = create_intent(gateway, reference=reference)
    newer = create_intent(gateway, reference=reference)
    create_intent(gateway)

    found = gateway.find_intents(merchant_reference=reference)

    assert [intent.id for intent in found] == [newer.id, older.id]
    assert gateway.find_intents(merchant_reference=new_key("unknown")) == []


def test_invalid_currency_rejected(gateway):
    with pytest.raises(GatewayRejected) as caught:
        gateway.create_intent(
            amount_minor=100, currency="US", merchant_reference=new_key("order"), idempotency_key=new_key("create")
        )

    assert caught.value.status_code == 400
    assert caught.value.code == "parameter_invalid"
    assert caught.value.param == "currency"


def test_unknown_intent_rejected(gateway):
    with pytest.raises(GatewayRejected) as caught:
        gateway.get_intent(provider_intent_id="pi_doesnotexist")

    assert caught.value.status_code == 404
    assert caught.value.code == "resource_missing"


def test_wrong_api_key_rejected(simulator):
    with SimulatorGateway(simulator.url, "sk_wrong", timeout_seconds=2.0) as gateway:
        with pytest.raises(GatewayRejected) as caught:
            create_intent(gateway)

    assert caught.value.status_code == 401
    assert caught.value.code == "invalid_api_key"


def test_unreachable_provider_unavailable():
    with SimulatorGateway(f"http://127.0.0.1:{closed_port()}", API_KEY, timeout_seconds=1.0) as gateway:
        with pytest.raises(GatewayUnavailable) as caught:
            create_intent(gateway)

    assert caught.value.outcome_unknown is False
    assert caught.value.retryable is True


def test_injected_error_rate_on_reads(gateway, simulator):
    intent = create_intent(gateway)
    simulator.set_faults(error_rate=1.0)

    with pytest.raises(GatewayUnavailable) as caught:
        gateway.get_intent(provider_intent_id=intent.id)

    assert caught.value.status_code == 500


def test_missing_idempotency_key_raises():
    gateway = SimulatorGateway(f"http://127.0.0.1:{closed_port()}", API_KEY)

    with pytest.raises(ValueError):
        gateway.capture(provider_intent_id="pi_x", idempotency_key="")


def test_get_gateway_reads_settings(settings):
    settings.PAYMENT_PROVIDER_URL = "http://127.0.0.1:59999/"
    settings.PAYMENT_PROVIDER_API_KEY = "sk_from_settings"
    settings.PAYMENT_PROVIDER_TIMEOUT_SECONDS = 7

    gateway = get_gateway()

    assert gateway.base_url == "http://127.0.0.1:59999"
    assert gateway.timeout_seconds == 7.0
    assert "sk_from_settings" not in repr(gateway)


def test_get_gateway_defaults(settings):
    for name in ("PAYMENT_PROVIDER_URL", "PAYMENT_PROVIDER_API_KEY", "PAYMENT_PROVIDER_TIMEOUT_SECONDS"):
        if hasattr(settings, name):
            delattr(settings, name)

    gateway = get_gateway()

    assert gateway.base_url == "http://127.0.0.1:28100"
    assert gateway.timeout_seconds == 3.0

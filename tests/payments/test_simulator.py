"""The simulator's HTTP API, control endpoints, webhooks and logs, over raw HTTP."""
from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid

import pytest

from payments import signatures
from payments.simulator.cli import build_parser
from tests.payments.conftest import API_KEY, REPO, WEBHOOK_SECRET


def create_intent(simulator, amount: int = 1500, reference: str | None = None) -> dict:
    response = simulator.call(
        "POST",
        "/v1/payment_intents",
        json={"amount": amount, "currency": "USD", "merchant_reference": reference or f"order-{uuid.uuid4()}"},
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    assert response.status_code == 201, response.text
    return response.json()


def capture(simulator, intent_id: str):
    return simulator.call(
        "POST", f"/v1/payment_intents/{intent_id}/capture", headers={"Idempotency-Key": str(uuid.uuid4())}
    )


def event_types(received) -> list[str]:
    return [item.event["type"] for item in received]


# --- API -------------------------------------------------------------------


def test_missing_api_key_returns_401(simulator):
    response = simulator.session.post(
        f"{simulator.url}/v1/payment_intents",
        json={"amount": 100, "currency": "USD", "merchant_reference": "order-1"},
        headers={"Authorization": ""},
        timeout=5,
    )

    assert response.status_code == 401
    assert response.headers["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "authentication_required"


def test_wrong_api_key_returns_401(simulator):
    response = simulator.session.get(
        f"{simulator.url}/_control/faults", headers={"Authorization": "Bearer sk_wrong"}, timeout=5
    )

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"amount": 0, "currency": "USD", "merchant_reference": "r"}, "amount", "parameter_invalid"),
        ({"amount": 12.5, "currency": "USD", "merchant_reference": "r"}, "amount", "parameter_invalid"),
        ({"amount": "100", "currency": "USD", "merchant_reference": "r"}, "amount", "parameter_invalid"),
        ({"amount": 100, "currency": "US", "merchant_reference": "r"}, "currency", "parameter_invalid"),
        ({"amount": 100, "currency": "U1D", "merchant_reference": "r"}, "currency", "parameter_invalid"),
        ({"amount": 100, "currency": "USD", "merchant_reference": ""}, "merchant_reference", "parameter_invalid"),
        ({"amount": 100, "currency": "USD"}, "merchant_reference", "parameter_missing"),
        ({"amount": 100, "currency": "USD", "merchant_reference": "r", "tip": 1}, "tip", "parameter_unknown"),
    ],
)
def test_create_intent_validation(simulator, body, param, code):
    response = simulator.call("POST", "/v1/payment_intents", json=body)

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == code
    assert error["param"] == param
    assert error["message"]


def test_invalid_json_rejected(simulator):
    response = simulator.call(
        "POST", "/v1/payment_intents", data=b"{not json", headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"


def test_unknown_route_and_method(simulator):
    missing = simulator.call("GET", "/v1/charges")
    wrong_method = simulator.call("DELETE", "/v1/payment_intents")

    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "resource_missing"
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"]["code"] == "method_not_allowed"


def test_intent_shape(simulator):
    intent = create_intent(simulator, amount=1234)

    assert intent["id"].startswith("pi_")
    assert intent["status"] == "requires_capture"
    assert intent["amount"] == 1234
    assert intent["currency"] == "USD"
    assert intent["amount_captured"] == 0
    assert intent["amount_refunded"] == 0
    assert intent["latest_charge"] is None
    assert isinstance(intent["created"], int)


def test_replay_sets_replayed_header(simulator):
    body = {"amount": 100, "currency": "USD", "merchant_reference": f"order-{uuid.uuid4()}"}
    headers = {"Idempotency-Key": str(uuid.uuid4())}

    first = simulator.call("POST", "/v1/payment_intents", json=body, headers=headers)
    # Key order differs, so the fingerprint must not depend on it.
    second = simulator.call("POST", "/v1/payment_intents", json=dict(reversed(body.items())), headers=headers)

    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert "Idempotent-Replayed" not in first.headers
    assert second.headers["Idempotent-Replayed"] == "true"


def test_invalid_request_does_not_hold_key(simulator):
    headers = {"Idempotency-Key": str(uuid.uuid4())}
    reference = f"order-{uuid.uuid4()}"

    invalid = simulator.call(
        "POST", "/v1/payment_intents", json={"amount": 0, "currency": "USD", "merchant_reference": reference}, headers=headers
    )
    corrected = simulator.call(
        "POST", "/v1/payment_intents", json={"amount": 100, "currency": "USD", "merchant_reference": reference}, headers=headers
    )

    assert invalid.status_code == 400
    assert corrected.status_code == 201
    assert "Idempotent-Replayed" not in corrected.headers


def test_refund_with_default_amount_refunds_rest(simulator):
    intent = create_intent(simulator, amount=900)
    assert capture(simulator, intent["id"]).status_code == 200

    response = simulator.call("POST", "/v1/refunds", json={"payment_intent": intent["id"]})

    assert response.status_code == 201
    refund = response.json()
    assert refund["amount"] == 900
    fetched = simulator.call("GET", f"/v1/refunds/{refund['id']}")
    assert fetched.json() == refund


def test_latency_applies_to_api_calls(simulator):
    simulator.set_faults(latency_ms=[250, 250])

    started = time.monotonic()
    simulator.call("GET", "/v1/payment_intents")
    elapsed = time.monotonic() - started

    assert elapsed >= 0.25


# --- control ---------------------------------------------------------------


def test_faults_default_and_update(simulator):
    defaults = simulator.call("GET", "/_control/faults").json()
    assert defaults["latency_ms"] == [20, 80]
    assert defaults["decline_rate"] == 0
    assert defaults["timeout_delay_ms"] == 10_000
    assert defaults["webhooks_enabled"] is True
    assert defaults["next_capture_outcomes"] == []

    updated = simulator.set_faults(decline_rate=0.25, duplicate_webhooks=True, reorder_webhooks=True)
    assert updated["decline_rate"] == 0.25
    assert updated["duplicate_webhooks"] == 2
    assert updated["reorder_webhooks"] == "reverse"
    assert simulator.call("GET", "/_control/faults").json() == updated


@pytest.mark.parametrize(
    ("faults", "param"),
    [
        ({"decline_rate": 1.5}, "decline_rate"),
        ({"latency_ms": [80, 20]}, "latency_ms"),
        ({"next_capture_outcomes": ["explode"]}, "next_capture_outcomes"),
        ({"webhooks_enabled": "yes"}, "webhooks_enabled"),
        ({"no_such_fault": 1}, "no_such_fault"),
    ],
)
def test_invalid_fault_rejected(simulator, faults, param):
    response = simulator.call("POST", "/_control/faults", json={"error_rate": 0.5, **faults})

    assert response.status_code == 400
    assert response.json()["error"]["param"] == param
    # A rejected update changes nothing, not even its valid fields.
    assert simulator.call("GET", "/_control/faults").json()["error_rate"] == 0


def test_reset_forgets_state_and_faults(simulator):
    intent = create_intent(simulator)
    simulator.set_faults(decline_rate=1.0)

    response = simulator.call("POST", "/_control/reset")

    assert response.status_code == 200
    assert simulator.call("GET", f"/v1/payment_intents/{intent['id']}").status_code == 404
    assert simulator.call("GET", "/_control/faults").json()["decline_rate"] == 0


def test_outcome_queue_consumed_in_order(simulator):
    simulator.set_faults(next_capture_outcomes=["decline", "ok"])
    declined = capture(simulator, create_intent(simulator)["id"])
    captured = capture(simulator, create_intent(simulator)["id"])

    assert declined.status_code == 402
    assert declined.json()["error"]["code"] == "card_declined"
    assert captured.status_code == 200
    assert simulator.call("GET", "/_control/faults").json()["next_capture_outcomes"] == []


def test_healthz_needs_no_key(simulator):
    response = simulator.session.get(f"{simulator.url}/healthz", headers={"Authorization": ""}, timeout=5)

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


# --- webhooks --------------------------------------------------------------


def test_webhooks_signed_and_verifiable(simulator, webhook_receiver):
    intent = create_intent(simulator, amount=800)
    assert capture(simulator, intent["id"]).status_code == 200
    refund = simulator.call("POST", "/v1/refunds", json={"payment_intent": intent["id"], "amount": 300})
    assert refund.status_code == 201

    received = webhook_receiver.wait_for(lambda items: len(items) >= 3, payment_intent=intent["id"])

    assert event_types(received) == ["payment_intent.created", "payment_intent.succeeded", "charge.refunded"]
    for item in received:
        signatures.verify(item.body, item.headers["Provider-Signature"], WEBHOOK_SECRET)
        assert item.headers["Content-Type"] == "application/json"
        assert item.event["id"].startswith("evt_")
        assert item.event["object"] == "event"
        assert isinstance(item.event["created"], int)
    snapshots = [item.event["data"]["object"] for item in received]
    assert [snapshot["status"] for snapshot in snapshots] == ["requires_capture", "succeeded", "succeeded"]
    assert [snapshot["amount_refunded"] for snapshot in snapshots] == [0, 0, 300]
    assert received[2].event["data"]["refund"]["id"] == refund.json()["id"]


def test_webhook_signature_fails_with_other_secret(simulator, webhook_receiver):
    intent = create_intent(simulator)
    received = webhook_receiver.wait_for(bool, payment_intent=intent["id"])
    assert received

    with pytest.raises(signatures.InvalidSignature) as caught:
        signatures.verify(received[0].body, received[0].headers["Provider-Signature"], "whsec_other")
    assert caught.value.reason == signatures.InvalidSignature.MISMATCH


def test_decline_sends_payment_failed(simulator, webhook_receiver):
    simulator.set_faults(next_capture_outcomes=["decline"])
    intent = create_intent(simulator)
    assert capture(simulator, intent["id"]).status_code == 402

    received = webhook_receiver.wait_for(lambda items: len(items) >= 2, payment_intent=intent["id"])

    assert event_types(received) == ["payment_intent.created", "payment_intent.payment_failed"]
    failed = received[1].event["data"]["object"]
    assert failed["status"] == "failed"
    assert failed["last_payment_error"]["code"] == "card_declined"


def test_webhook_retried_after_receiver_error(simulator, webhook_receiver):
    webhook_receiver.fail_next(2)
    intent = create_intent(simulator)

    received = webhook_receiver.wait_for(bool, payment_intent=intent["id"])

    assert event_types(received) == ["payment_intent.created"]
    deliveries = simulator.deliveries(intent["id"])
    assert len(deliveries) == 1
    assert deliveries[0]["state"] == "delivered"
    assert deliveries[0]["attempts"] == 3
    assert deliveries[0]["last_status"] == 200
    retries = [
        line
        for line in simulator.log_lines()
        if line["event"] == "webhook.retry_scheduled" and line.get("payment_intent") == intent["id"]
    ]
    assert [line["status"] for line in retries] == [500, 500]


def test_webhook_gives_up_after_max_attempts(simulator, webhook_receiver):
    webhook_receiver.fail_next(100)
    intent = create_intent(simulator)

    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        deliveries = simulator.deliveries(intent["id"])
        if deliveries and deliveries[0]["state"] == "failed":
            break
        time.sleep(0.05)
    webhook_receiver.fail_next(0)

    assert deliveries[0]["state"] == "failed"
    assert deliveries[0]["attempts"] == 4
    assert deliveries[0]["last_status"] == 500


def test_duplicate_webhooks_sent_twice(simulator, webhook_receiver):
    simulator.set_faults(duplicate_webhooks=True)
    intent = create_intent(simulator)
    assert capture(simulator, intent["id"]).status_code == 200

    received = webhook_receiver.wait_for(lambda items: len(items) >= 4, payment_intent=intent["id"])

    event_ids = [item.event["id"] for item in received]
    assert len(event_ids) == 4
    assert len(set(event_ids)) == 2
    for event_id in set(event_ids):
        assert event_ids.count(event_id) == 2


def test_reordered_webhooks_arrive_reversed(simulator, webhook_receiver):
    simulator.set_faults(reorder_webhooks="reverse", reorder_window_ms=600)
    intent = create_intent(simulator)
    assert capture(simulator, intent["id"]).status_code == 200

    received = webhook_receiver.wait_for(lambda items: len(items) >= 2, payment_intent=intent["id"])

    assert event_types(received) == ["payment_intent.succeeded", "payment_intent.created"]


def test_webhooks_disabled_sends_nothing(simulator, webhook_receiver):
    simulator.set_faults(webhooks_enabled=False)
    intent = create_intent(simulator)

    time.sleep(0.3)

    assert webhook_receiver.received(intent["id"]) == []
    assert [delivery["state"] for delivery in simulator.deliveries(intent["id"])] == ["skipped"]


def test_webhook_delay_postpones_delivery(simulator, webhook_receiver):
    simulator.set_faults(webhook_delay_ms=500)
    started = time.monotonic()
    intent = create_intent(simulator)

    received = webhook_receiver.wait_for(bool, payment_intent=intent["id"])

    assert received
    assert received[0].received_at - started >= 0.5


# --- process ---------------------------------------------------------------


def test_log_lines_are_json_without_secrets(simulator):
    intent = create_intent(simulator)
    text = simulator.log_path.read_text()

    assert API_KEY not in text
    assert WEBHOOK_SECRET not in text
    lines = simulator.log_lines()
    assert lines[0]["event"] == "simulator.started"
    completed = [
        line for line in lines if line["event"] == "request.completed" and line.get("payment_intent") == intent["id"]
    ]
    assert completed
    assert completed[0]["status"] == 201
    assert completed[0]["request_id"].startswith("req_")


def test_simulator_does_not_import_django():
    script = (
        "import sys\n"
        "import payments.simulator.cli\n"
        "assert not any(name == 'django' or name.startswith('django.') for name in sys.modules), 'django imported'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=30, check=False
    )

    assert result.returncode == 0, result.stderr


def test_cli_options_from_environment():
    environment = {
        "PAYMENT_PROVIDER_PORT": "59001",
        "PAYMENT_WEBHOOK_URL": "http://127.0.0.1:59002/hooks/",
        "PAYMENT_WEBHOOK_SECRET": "whsec_env",
        "PAYMENT_PROVIDER_API_KEY": "sk_env",
        "PAYMENT_PROVIDER_LATENCY_MS": "5,10",
    }

    from_environment = build_parser(environment).parse_args([])
    defaults = build_parser({}).parse_args([])
    overridden = build_parser(environment).parse_args(["--port", "59003", "--seed", "7"])

    assert from_environment.port == 59001
    assert from_environment.webhook_url == "http://127.0.0.1:59002/hooks/"
    assert from_environment.webhook_secret == "whsec_env"
    assert from_environment.api_key == "sk_env"
    assert from_environment.latency_ms == (5, 10)
    assert defaults.host == "127.0.0.1"
    assert defaults.port == 28100
    assert defaults.webhook_url == "http://127.0.0.1:28000/api/v1/payments/webhooks/provider/"
    assert defaults.api_key == "sk_local_demo"
    assert defaults.webhook_secret == "whsec_local_demo"
    assert defaults.latency_ms == (20, 80)
    assert defaults.seed is None
    assert overridden.port == 59003
    assert overridden.seed == 7


def test_stop_logs_and_exits_cleanly(tmp_path):
    log_path = tmp_path / "simulator.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "payments.simulator", "--port", "0", "--webhook-url", ""],
            cwd=REPO,
            stdout=log_file,
            stderr=log_file,
        )
    try:
        deadline = time.monotonic() + 15
        while '"simulator.started"' not in log_path.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        process.terminate()
        exit_code = process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=5)

    events = [json.loads(line)["event"] for line in log_path.read_text().splitlines() if line.strip()]
    assert exit_code == 0
    assert events == ["simulator.started", "simulator.stopping", "simulator.stopped"]


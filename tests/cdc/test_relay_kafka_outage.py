"""A Kafka outage while the relay runs: checkout still commits, the outbox grows, and the backlog drains in order.

These tests stop the shared broker for about ten seconds and always start it
again; other test runs see Kafka down meanwhile.
"""
from __future__ import annotations

import signal
import subprocess
import time

import pytest

from cdc.relay.status import collect_status
from commerce.models import OutboxEvent
from tests.cdc.relay_fixtures import (  # noqa: F401 - pytest finds fixtures by name.
    REPO,
    assert_in_version_order,
    logical_slot,
    read_envelopes,
    relay_command,
    relay_environment,
    relay_names,
    relay_settings,
    write_events,
    write_events_in_one_transaction,
)
from tests.services import stack
from tests.shopping import Shopper, stocked_variant

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services, pytest.mark.timeout(180)]


def wait_until_outbox_empty(timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while OutboxEvent.objects.exists():
        assert time.monotonic() < deadline, f"{OutboxEvent.objects.count()} outbox rows left after {timeout}s"
        time.sleep(0.2)


@pytest.fixture(params=["logical", "poll"])
def mode(request) -> str:
    request.getfixturevalue("logical_slot" if request.param == "logical" else "relay_settings")
    return request.param


def test_backlog_drains_after_outage(mode, relay_names, tmp_path):
    shopper = Shopper()
    shopper.new_cart()
    variant = stocked_variant(price="12.50", on_hand=3)
    assert shopper.add(variant.sku, 1).status_code == 201

    log_path = tmp_path / "relay.log"
    with log_path.open("w") as log_file:
        relay = subprocess.Popen(
            relay_command(mode, relay_names, once=False),
            cwd=REPO,
            env=relay_environment(),
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        written = write_events("outage-a", [1, 2])
        wait_until_outbox_empty(timeout=30)
        assert collect_status(slot=relay_names.slot)["relay"]["mode"] == mode

        stack("down", "kafka")
        try:
            during_outage = write_events("outage-a", [3, 4, 5])
            during_outage += write_events_in_one_transaction("outage-b", [1, 2, 3])
            checkout = shopper.checkout()
            assert checkout.status_code == 201, checkout.content
            # Nothing was acknowledged, so every row stays in the outbox:
            # the six written above and the checkout's order.placed.
            time.sleep(2)
            assert OutboxEvent.objects.count() >= len(during_outage) + 1
            assert relay.poll() is None, "relay exited while Kafka was down"
        finally:
            stack("up", "kafka")

        wait_until_outbox_empty(timeout=60)
        relay.send_signal(signal.SIGTERM)
        assert relay.wait(timeout=30) == 0
    finally:
        if relay.poll() is None:
            relay.kill()
            relay.wait()

    output = log_path.read_text()
    assert "relay_kafka_error" in output
    assert "relay_stopped" in output

    written += during_outage
    order_id = checkout.json()["id"]
    expected_ids = {str(event.event_id) for event in written}
    envelopes = read_envelopes("order", expected_event_ids=expected_ids)
    assert expected_ids <= {envelope.event_id for envelope in envelopes}
    assert_in_version_order([envelope for envelope in envelopes if envelope.aggregate_id != order_id], written)
    placed = [envelope for envelope in envelopes if envelope.aggregate_id == order_id]
    assert [envelope.type for envelope in placed] == ["order.placed"]

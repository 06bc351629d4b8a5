"""The relay against the real PostgreSQL and Kafka, in both modes: crashes, restarts and ordering.

The relay runs as `manage.py run_cdc_relay` subprocesses. The fault hook
CDC_RELAY_TEST_EXIT_AFTER_ACKS makes a process exit right after the broker
acknowledged the Nth message of a batch, before the batch is confirmed, as a
relay killed mid-batch would.
"""
from __future__ import annotations

import pytest

from cdc.relay.publisher import EXIT_AFTER_ACKS_CODE
from commerce.models import OutboxEvent
from tests.cdc.relay_fixtures import (  # noqa: F401 - pytest finds fixtures by name.
    assert_in_version_order,
    logical_slot,
    read_envelopes,
    relay_names,
    relay_settings,
    run_relay_process,
    slot_confirmed_lsn,
    write_events,
    write_events_in_one_transaction,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

MODES = ["logical", "poll"]


@pytest.fixture(params=MODES)
def mode(request) -> str:
    """The relay mode under test; logical mode gets its slot before the test writes."""
    if request.param == "logical":
        request.getfixturevalue("logical_slot")
    else:
        request.getfixturevalue("relay_settings")
    return request.param


def interleaved_events(aggregate_ids: list[str], versions: range) -> list[OutboxEvent]:
    """Write version 1 of every aggregate, then version 2 and so on, each row in its own transaction."""
    written = []
    for version in versions:
        for aggregate_id in aggregate_ids:
            written += write_events(aggregate_id, [version])
    return written


def assert_ran(result, expected_code: int = 0) -> None:
    assert result.returncode == expected_code, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"


def test_crash_mid_batch_redelivers(mode, relay_names):
    written = interleaved_events([f"crash-{index}" for index in range(5)], range(1, 7))
    # A logical batch counts decoded messages (Begin, Insert and Commit per
    # transaction), so 60 of them cover about 20 single-row transactions.
    batch_size = 60 if mode == "logical" else 20
    slot_before = slot_confirmed_lsn(relay_names.slot)

    crashed = run_relay_process(mode, relay_names, exit_after_acks=5, batch_size=batch_size)
    assert_ran(crashed, EXIT_AFTER_ACKS_CODE)
    assert OutboxEvent.objects.count() == len(written)
    assert slot_confirmed_lsn(relay_names.slot) == slot_before

    restarted = run_relay_process(mode, relay_names, batch_size=batch_size)
    assert_ran(restarted)

    envelopes = read_envelopes("order", expected_event_ids={str(event.event_id) for event in written})
    event_ids = [envelope.event_id for envelope in envelopes]
    assert set(event_ids) == {str(event.event_id) for event in written}
    # The five acknowledged before the crash were published again after it.
    assert len(event_ids) - len(set(event_ids)) == 5
    assert_in_version_order(envelopes, written)
    assert not OutboxEvent.objects.exists()


def test_transaction_rows_survive_crash(mode, relay_names):
    before = write_events("order-before", [1, 2])
    together = write_events_in_one_transaction("order-multi", [1, 2, 3, 4])
    after = write_events("order-after", [1])
    written = before + together + after

    crashed = run_relay_process(mode, relay_names, exit_after_acks=3)
    assert_ran(crashed, EXIT_AFTER_ACKS_CODE)
    restarted = run_relay_process(mode, relay_names)
    assert_ran(restarted)

    envelopes = read_envelopes("order", expected_event_ids={str(event.event_id) for event in written})
    assert {envelope.event_id for envelope in envelopes} == {str(event.event_id) for event in written}
    multi = [envelope.aggregate_version for envelope in envelopes if envelope.aggregate_id == "order-multi"]
    # Only the first row of the transaction was acknowledged before the crash.
    assert multi == [1, 1, 2, 3, 4]
    assert_in_version_order(envelopes, written)
    assert not OutboxEvent.objects.exists()


def test_version_order_across_restarts(mode, relay_names):
    aggregates = ["restart-a", "restart-b", "restart-c"]
    written = interleaved_events(aggregates, range(1, 4))
    assert_ran(run_relay_process(mode, relay_names, batch_size=4))

    written += interleaved_events(aggregates, range(4, 8))
    # Batches of at least three events in both modes; the crash hits the first one.
    assert_ran(run_relay_process(mode, relay_names, exit_after_acks=2, batch_size=8), EXIT_AFTER_ACKS_CODE)

    written += interleaved_events(aggregates, range(8, 10))
    assert_ran(run_relay_process(mode, relay_names, batch_size=4))
    assert_ran(run_relay_process(mode, relay_names))

    envelopes = read_envelopes("order", expected_event_ids={str(event.event_id) for event in written})
    assert_in_version_order(envelopes, written)
    assert not OutboxEvent.objects.exists()

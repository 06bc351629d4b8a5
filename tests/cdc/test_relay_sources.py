"""Source-specific relay behaviour: late commits of lower ids, the slot's backfill and heartbeat, the leader lock."""
from __future__ import annotations

import threading
import time
import uuid

import pytest
from django.contrib.auth import get_user_model

from cdc.relay import database
from cdc.relay.config import RelayConfig, logical_lock_name
from cdc.relay.logical import LogicalSource, RelaySetupError
from cdc.relay.pgoutput import parse_lsn
from cdc.relay.publisher import EXIT_AFTER_ACKS_CODE
from cdc.relay.runner import Relay
from commerce.models import OutboxEvent
from tests.cdc.relay_fixtures import (  # noqa: F401 - pytest finds fixtures by name.
    RelayThread,
    assert_in_version_order,
    logical_slot,
    open_raw_connection,
    read_envelopes,
    relay_names,
    relay_once,
    relay_settings,
    run_relay_process,
    slot_confirmed_lsn,
    write_events,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

INSERT_OUTBOX_ROW = """
    INSERT INTO commerce_outboxevent
        (event_id, event_type, schema_version, aggregate_type, aggregate_id, aggregate_version, occurred_at, payload)
    VALUES (gen_random_uuid(), 'order.relay_test', 1, 'order', %s, 1, now(), '{}'::jsonb)
    RETURNING id, event_id::text
"""


@pytest.mark.parametrize("mode", ["poll", "logical"])
def test_lower_id_committed_late_published(request, mode):
    request.getfixturevalue("logical_slot" if mode == "logical" else "relay_settings")

    with open_raw_connection() as writer:
        with writer.transaction():
            low_id, low_event_id = writer.execute(INSERT_OUTBOX_ROW, ["late-low"]).fetchone()
            (high,) = write_events("late-high", [1])
            assert low_id < high.id

            relay_once(mode=mode)
            first = read_envelopes("order", expected_event_ids={str(high.event_id)})
            assert [envelope.event_id for envelope in first] == [str(high.event_id)]
        # Leaving the block commits the lower id after the higher one was published.

    relay_once(mode=mode)
    second = read_envelopes("order", expected_event_ids={str(high.event_id), low_event_id})
    assert sorted(envelope.event_id for envelope in second) == sorted([str(high.event_id), low_event_id])
    assert not OutboxEvent.objects.exists()


def test_backfill_publishes_rows_older_than_slot(relay_settings):
    older = write_events("backfill", [1, 2, 3])

    relay_once(mode="logical")
    newer = write_events("backfill", [4, 5])
    relay_once(mode="logical")

    written = older + newer
    envelopes = read_envelopes("order", expected_event_ids={str(event.event_id) for event in written})
    assert [envelope.aggregate_version for envelope in envelopes] == [1, 2, 3, 4, 5]
    assert not OutboxEvent.objects.exists()


def test_backfill_repeats_after_crash(relay_settings):
    older = write_events("backfill-crash", [1, 2, 3])

    crashed = run_relay_process("logical", relay_settings, exit_after_acks=1)
    assert crashed.returncode == EXIT_AFTER_ACKS_CODE, crashed.stderr
    # The slot now exists, and rows older than it would be lost without the pending backfill marker.
    assert slot_confirmed_lsn(relay_settings.slot) is not None
    restarted = run_relay_process("logical", relay_settings)
    assert restarted.returncode == 0, restarted.stderr

    envelopes = read_envelopes("order", expected_event_ids={str(event.event_id) for event in older})
    assert [envelope.aggregate_version for envelope in envelopes] == [1, 1, 2, 3]
    assert_in_version_order(envelopes, older)
    assert not OutboxEvent.objects.exists()


def test_heartbeat_advances_idle_slot(logical_slot, settings):
    settings.CDC_RELAY_HEARTBEAT_SECONDS = 0.2
    before = parse_lsn(slot_confirmed_lsn(logical_slot.slot))
    # WAL from other tables only: the slot returns nothing for it.
    get_user_model().objects.create(username=f"heartbeat-{uuid.uuid4().hex[:8]}")

    relay = RelayThread().start()
    try:
        deadline = time.monotonic() + 10
        while parse_lsn(slot_confirmed_lsn(logical_slot.slot)) <= before:
            assert time.monotonic() < deadline, "slot did not advance without outbox rows"
            time.sleep(0.1)
    finally:
        relay.stop()
    assert relay.relay.stats.published == 0


def test_second_relay_waits_for_lock(logical_slot):
    relay = Relay(RelayConfig.from_settings())
    with open_raw_connection() as holder:
        assert database.try_advisory_lock(holder, logical_lock_name(logical_slot.slot))
        runner = threading.Thread(target=relay.run, kwargs={"once": True}, daemon=True)
        runner.start()
        write_events("standby", [1])
        time.sleep(1.0)
        assert runner.is_alive()
        assert OutboxEvent.objects.count() == 1
    # Closing the holder's session released the lock.
    runner.join(timeout=15)
    assert not runner.is_alive()
    assert relay.stats.published == 1
    assert not OutboxEvent.objects.exists()


def test_slot_with_other_plugin_rejected(relay_settings):
    with open_raw_connection() as setup:
        setup.execute("SELECT pg_create_logical_replication_slot(%s, 'test_decoding')", [relay_settings.slot])
        source = LogicalSource(
            setup, slot=relay_settings.slot, publication=relay_settings.publication, heartbeat_seconds=10
        )
        with pytest.raises(RelaySetupError, match="test_decoding"):
            source.prepare()

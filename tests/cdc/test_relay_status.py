"""`cdc_status` and the /readyz `cdc` block: slot lag, outbox backlog and consumer group lag."""
from __future__ import annotations

import io
import json
import time

import pytest
from confluent_kafka import Consumer, TopicPartition
from django.core.management import CommandError, call_command

from cdc.envelope import topic_for
from cdc.relay.status import collect_status
from commerce.health import check_cdc
from tests.cdc.relay_fixtures import (  # noqa: F401 - pytest finds fixtures by name.
    logical_slot,
    read_envelopes,
    relay_names,
    relay_once,
    relay_settings,
    write_events,
)
from tests.services import closed_port

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


def test_status_reports_backlog_and_lag(logical_slot, kafka_topic_prefix, settings):
    published = write_events("status", [1, 2, 3])
    relay_once()
    read_envelopes("order", expected_event_ids={str(event.event_id) for event in published})
    write_events("status", [4, 5])

    group_id = f"{kafka_topic_prefix}.status-test"
    consumer = Consumer(
        {"bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS, "group.id": group_id, "enable.auto.commit": False}
    )
    try:
        topic = topic_for("order")
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, partition, 0) for partition in partitions])
        message = None
        deadline = time.monotonic() + 20
        while message is None or message.error() is not None:
            assert time.monotonic() < deadline, f"nothing to read from {topic}"
            message = consumer.poll(1.0)
        consumer.commit(message=message, asynchronous=False)
    finally:
        consumer.close()

    status = collect_status(slot=logical_slot.slot, timeout=5)

    assert status["relay"] == {"mode": None, "backend_pid": None}
    assert status["slot"]["exists"] is True
    assert status["slot"]["lag_bytes"] >= 0
    assert status["slot"]["retained_wal_bytes"] >= status["slot"]["lag_bytes"]
    assert status["outbox"]["backlog"] == 2
    assert status["outbox"]["oldest_unpublished_age_seconds"] >= 0
    group = status["consumer_groups"]["groups"][group_id]
    assert group["lag"] == 2
    assert group["partitions"] == [
        {"topic": topic, "partition": message.partition(), "committed": 1, "end": 3, "lag": 2}
    ]


def test_status_command_json(logical_slot):
    write_events("status-json", [1])
    output = io.StringIO()

    call_command("cdc_status", "--json", stdout=output)

    status = json.loads(output.getvalue())
    assert status["slot"]["name"] == logical_slot.slot
    assert status["outbox"]["backlog"] == 1
    assert "error" not in status["consumer_groups"]


# The two tests below use no topic prefix fixture: its cleanup would try the
# unreachable broker. They create no slot either.


def test_status_names_unreachable_kafka(settings):
    settings.CDC_RELAY_SLOT = "test_relay_missing"
    settings.KAFKA_BOOTSTRAP_SERVERS = f"127.0.0.1:{closed_port()}"
    output = io.StringIO()

    with pytest.raises(CommandError, match="consumer_groups"):
        call_command("cdc_status", "--timeout", "1", stdout=output)

    text = output.getvalue()
    assert "consumer groups: error:" in text
    assert "slot test_relay_missing: does not exist" in text
    assert "outbox: 0 unpublished rows" in text


def test_readyz_block_survives_outage(settings):
    settings.CDC_RELAY_SLOT = "test_relay_missing"
    settings.KAFKA_BOOTSTRAP_SERVERS = f"127.0.0.1:{closed_port()}"

    block = check_cdc(timeout=1)

    assert "error" in block["consumer_groups"]
    assert block["outbox"] == {"backlog": 0, "oldest_unpublished_age_seconds": None}
    assert block["slot"] == {"name": "test_relay_missing", "exists": False}

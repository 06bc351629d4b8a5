"""Fixtures and helpers of the relay tests: slots, outbox writes, relay processes and reading events back.

Slots are cluster-wide and retain WAL until dropped, and other test runs share
the server, so every test gets slot and publication names of its own and
drops them afterwards.
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from confluent_kafka import Consumer, TopicPartition
from django.conf import settings as django_settings
from django.db import connection, transaction
from django.utils import timezone

from cdc.envelope import Envelope, topic_for
from cdc.relay import database
from cdc.relay.config import RelayConfig
from cdc.relay.logical import LogicalSource, drop_publication, drop_slot
from cdc.relay.runner import Relay
from commerce.models import OutboxEvent

REPO = Path(__file__).resolve().parents[2]
RELAY_TIMEOUT_SECONDS = 60


@dataclass(frozen=True)
class RelayNames:
    slot: str
    publication: str


@pytest.fixture
def relay_names() -> Iterator[RelayNames]:
    """Unique slot and publication names, dropped after the test even when a relay process created them."""
    suffix = uuid.uuid4().hex[:8]
    names = RelayNames(slot=f"test_relay_{suffix}", publication=f"test_relay_{suffix}")
    yield names
    with database.connect(application_name="relay-test-cleanup") as cleanup:
        drop_slot(cleanup, names.slot)
        drop_publication(cleanup, names.publication)


@pytest.fixture
def relay_settings(settings, kafka_topic_prefix, relay_names) -> RelayNames:
    """Point the in-process relay at this test's slot, publication and topics, with short idle waits."""
    settings.CDC_RELAY_SLOT = relay_names.slot
    settings.CDC_RELAY_PUBLICATION = relay_names.publication
    settings.CDC_RELAY_IDLE_SECONDS = 0.05
    settings.CDC_RELAY_BACKOFF_MAX_SECONDS = 1.0
    return relay_names


@pytest.fixture
def logical_slot(relay_settings) -> RelayNames:
    """Create the publication and slot before the test writes, so its rows reach the relay through the slot."""
    with database.connect(application_name="relay-test-setup") as setup:
        source = LogicalSource(
            setup, slot=relay_settings.slot, publication=relay_settings.publication, heartbeat_seconds=10
        )
        assert source.prepare(), "a fresh slot must ask for a backfill"
        # The test database starts empty, so there is nothing older than the slot.
        assert not OutboxEvent.objects.exists()
        source.backfill_finished()
    return relay_settings


def write_events(aggregate_id: str, versions: Iterable[int], *, aggregate_type: str = "order") -> list[OutboxEvent]:
    """Write one outbox row per version, each in its own committed transaction."""
    events = []
    for version in versions:
        with transaction.atomic():
            events.append(_create_event(aggregate_type, aggregate_id, version))
    return events


def write_events_in_one_transaction(aggregate_id: str, versions: Iterable[int], *, aggregate_type: str = "order") -> list[OutboxEvent]:
    with transaction.atomic():
        return [_create_event(aggregate_type, aggregate_id, version) for version in versions]


def _create_event(aggregate_type: str, aggregate_id: str, version: int) -> OutboxEvent:
    # Written through the model rather than outbox_write: the relay must
    # carry any row, whatever its payload schema.
    return OutboxEvent.objects.create(
        event_type=f"{aggregate_type}.relay_test",
        aggregate_type=aggregate_type,
        aggregate_id=aggregate_id,
        aggregate_version=version,
        occurred_at=timezone.now(),
        payload={"aggregate_id": aggregate_id, "version": version},
    )


def relay_once(**overrides) -> Relay:
    """Run an in-process relay until the source is drained, with the test's settings."""
    relay = Relay(RelayConfig.from_settings(**overrides))
    relay.run(once=True)
    return relay


class RelayThread:
    """An in-process relay running in a thread until `stop` is called."""

    def __init__(self, **overrides) -> None:
        self.relay = Relay(RelayConfig.from_settings(**overrides))
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="relay-under-test", daemon=True)

    def _run(self) -> None:
        try:
            self.relay.run()
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread by stop().
            self.error = exc

    def start(self) -> RelayThread:
        self._thread.start()
        return self

    def stop(self, timeout: float = 30) -> None:
        self.relay.stop_event.set()
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "relay thread did not stop"
        if self.error is not None:
            raise self.error


def relay_environment(*, exit_after_acks: int | None = None) -> dict[str, str]:
    """Environment of a relay subprocess: this test's database and topic prefix."""
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "KAFKA_TOPIC_PREFIX": django_settings.KAFKA_TOPIC_PREFIX,
        "LOG_FORMAT": "console",
    }
    env.pop("CDC_RELAY_TEST_EXIT_AFTER_ACKS", None)
    if exit_after_acks is not None:
        env["CDC_RELAY_TEST_EXIT_AFTER_ACKS"] = str(exit_after_acks)
    return env


def relay_command(mode: str, names: RelayNames, *, once: bool = True, batch_size: int | None = None) -> list[str]:
    command = [
        sys.executable, "manage.py", "run_cdc_relay",
        "--mode", mode, "--slot", names.slot, "--publication", names.publication,
    ]
    if once:
        command.append("--once")
    if batch_size is not None:
        command += ["--batch-size", str(batch_size)]
    return command


def run_relay_process(
    mode: str, names: RelayNames, *, exit_after_acks: int | None = None, batch_size: int | None = None
) -> subprocess.CompletedProcess:
    """Run `run_cdc_relay --once` as a separate process and return its exit status and output."""
    return subprocess.run(
        relay_command(mode, names, batch_size=batch_size),
        cwd=REPO,
        env=relay_environment(exit_after_acks=exit_after_acks),
        capture_output=True,
        text=True,
        timeout=RELAY_TIMEOUT_SECONDS,
        check=False,
    )


def read_envelopes(aggregate_type: str, *, expected_event_ids: set[str], timeout: float = 30) -> list[Envelope]:
    """Read the aggregate type's topic from the start until every expected event id arrived, then 0.5 s more.

    Partitions are assigned directly, so no group join delays the read.
    Messages keep their order within each partition, which is the order one
    aggregate's events arrived in.
    """
    topic = topic_for(aggregate_type)
    consumer = Consumer(
        {
            "bootstrap.servers": django_settings.KAFKA_BOOTSTRAP_SERVERS,
            "group.id": f"{django_settings.KAFKA_TOPIC_PREFIX}.relay-test-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    try:
        partitions = _wait_for_partitions(consumer, topic, timeout)
        consumer.assign([TopicPartition(topic, partition, 0) for partition in partitions])
        envelopes: list[Envelope] = []
        deadline = time.monotonic() + timeout
        while not expected_event_ids <= {envelope.event_id for envelope in envelopes}:
            if time.monotonic() > deadline:
                break
            _poll_into(consumer, envelopes)
        settle = time.monotonic() + 0.5
        while time.monotonic() < settle:
            _poll_into(consumer, envelopes)
        return envelopes
    finally:
        consumer.close()


def _wait_for_partitions(consumer: Consumer, topic: str, timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while True:
        metadata = consumer.list_topics(topic, timeout=5).topics.get(topic)
        if metadata is not None and metadata.error is None and metadata.partitions:
            return sorted(metadata.partitions)
        if time.monotonic() > deadline:
            raise AssertionError(f"topic {topic} was not created within {timeout}s")
        time.sleep(0.2)


def _poll_into(consumer: Consumer, envelopes: list[Envelope]) -> None:
    message = consumer.poll(0.1)
    if message is None:
        return
    assert message.error() is None, message.error()
    envelope = Envelope.from_json(message.value())
    assert message.key() == envelope.key
    assert dict(message.headers())["event_id"] == envelope.event_id.encode()
    envelopes.append(envelope)


def versions_by_aggregate(envelopes: Iterable[Envelope]) -> dict[str, list[int]]:
    arrived: dict[str, list[int]] = defaultdict(list)
    for envelope in envelopes:
        arrived[envelope.aggregate_id].append(envelope.aggregate_version)
    return arrived


def assert_in_version_order(envelopes: list[Envelope], written: Iterable[OutboxEvent]) -> None:
    """Check that every written event arrived and no version arrived before all lower versions of its aggregate.

    Repeats of versions already seen are allowed, because a relay restart
    publishes its unconfirmed batch again.
    """
    expected: dict[str, set[int]] = defaultdict(set)
    for event in written:
        expected[event.aggregate_id].add(event.aggregate_version)
    arrived = versions_by_aggregate(envelopes)
    for aggregate_id, versions in expected.items():
        sequence = arrived.get(aggregate_id, [])
        assert set(sequence) == versions, f"{aggregate_id}: arrived {sequence}, written {sorted(versions)}"
        for position, version in enumerate(sequence):
            earlier = {lower for lower in versions if lower < version}
            missing = earlier - set(sequence[:position])
            assert not missing, f"{aggregate_id}: v{version} arrived before v{sorted(missing)} in {sequence}"


def slot_confirmed_lsn(slot: str) -> str | None:
    with database.connect(application_name="relay-test-inspect") as inspect:
        row = inspect.execute(
            "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = %s", [slot]
        ).fetchone()
    return row[0] if row else None


def open_raw_connection() -> psycopg.Connection:
    """A second session on the test database that Django's connection handling does not touch."""
    return database.connect(application_name="relay-test-writer")

"""Fixtures for tests against the real Kafka broker of the native stack.

The broker is shared with other test runs, so every test gets a topic prefix
(and with it consumer group ids) of its own, and its topics and groups are
deleted afterwards.
"""
from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from django.conf import settings as django_settings

from cdc.envelope import Envelope

ADMIN_TIMEOUT_SECONDS = 10


@pytest.fixture
def kafka_topic_prefix(settings) -> str:
    """Set KAFKA_TOPIC_PREFIX to a fresh value and delete its topics and consumer groups after the test."""
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    settings.KAFKA_TOPIC_PREFIX = prefix
    yield prefix
    _delete_topics_and_groups(prefix)


@pytest.fixture
def fast_consumers(settings, kafka_topic_prefix) -> None:
    """Shorten the consumer framework's waits so a test finishes in seconds."""
    settings.CDC_CONSUMER_MAX_ATTEMPTS = 3
    settings.CDC_CONSUMER_RETRY_BACKOFF_SECONDS = 0.05
    settings.CDC_CONSUMER_DATABASE_RETRY_SECONDS = 0.05
    settings.CDC_CONSUMER_POLL_TIMEOUT_SECONDS = 0.2
    settings.CDC_DEAD_LETTER_TIMEOUT_SECONDS = 10
    settings.CDC_CONSUMER_KAFKA_CONFIG = {"session.timeout.ms": 6000, "heartbeat.interval.ms": 1000}


@dataclass
class Delivered:
    """Where the broker stored a produced message."""

    topic: str
    partition: int
    offset: int


@dataclass
class KafkaTestProducer:
    """Produce messages and wait for each acknowledgement, so a test can use their partitions and offsets."""

    producer: Producer = field(
        default_factory=lambda: Producer({"bootstrap.servers": django_settings.KAFKA_BOOTSTRAP_SERVERS})
    )

    def send(
        self,
        topic: str,
        value: bytes | None,
        *,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
        timestamp_ms: int | None = None,
    ) -> Delivered:
        reports: list[tuple[Any, Message]] = []
        extra = {} if timestamp_ms is None else {"timestamp": timestamp_ms}
        self.producer.produce(
            topic,
            value=value,
            key=key,
            headers=headers or [],
            on_delivery=lambda error, message: reports.append((error, message)),
            **extra,
        )
        self.producer.flush(ADMIN_TIMEOUT_SECONDS)
        assert reports, f"no delivery report from {topic}"
        error, message = reports[0]
        assert error is None, f"producing to {topic} failed: {error}"
        return Delivered(message.topic(), message.partition(), message.offset())

    def send_envelope(self, envelope: Envelope, *, timestamp_ms: int | None = None) -> Delivered:
        """Produce an envelope the way the relay does: keyed by aggregate id, with the envelope fields as headers."""
        return self.send(
            envelope.topic, envelope.to_json(), key=envelope.key, headers=envelope.headers(), timestamp_ms=timestamp_ms
        )


@pytest.fixture
def kafka_producer(kafka_topic_prefix) -> KafkaTestProducer:
    return KafkaTestProducer()


@pytest.fixture
def make_envelope(kafka_topic_prefix) -> Callable[..., Envelope]:
    """Return a factory of envelopes with fresh ids; the aggregate type is the event type's first word."""

    def build(
        event_type: str = "order.placed",
        *,
        aggregate_id: str | None = None,
        aggregate_version: int = 1,
        payload: dict[str, Any] | None = None,
        occurred_at: str | None = None,
        version: int = 1,
    ) -> Envelope:
        aggregate_id = aggregate_id or str(uuid.uuid4())
        return Envelope(
            event_id=str(uuid.uuid4()),
            type=event_type,
            version=version,
            aggregate_type=event_type.split(".")[0],
            aggregate_id=aggregate_id,
            aggregate_version=aggregate_version,
            occurred_at=occurred_at or datetime.now(UTC).isoformat(),
            payload=payload if payload is not None else {"order_id": aggregate_id},
        )

    return build


class KafkaInspector:
    """Read topics, offsets and watermarks without joining a consumer group, so nothing is committed."""

    def _client(self, group_id: str) -> Consumer:
        return Consumer(
            {
                "bootstrap.servers": django_settings.KAFKA_BOOTSTRAP_SERVERS,
                "group.id": group_id,
                "enable.auto.commit": False,
            }
        )

    def _partitions(self, client: Consumer, topic: str) -> list[int]:
        metadata = client.list_topics(topic, timeout=ADMIN_TIMEOUT_SECONDS)
        return sorted(metadata.topics[topic].partitions)

    def read_topic(self, topic: str, *, expected: int, timeout: float = 20) -> list[Message]:
        """Read `topic` from the start until `expected` messages arrived or `timeout` passed.

        A short extra read follows, so an unexpected (N+1)th message is also
        returned and a test can assert an exact count.
        """
        client = self._client(f"{topic}.test-reader")
        try:
            client.assign([TopicPartition(topic, partition, 0) for partition in self._partitions(client, topic)])
            messages: list[Message] = []
            deadline = time.monotonic() + timeout
            while len(messages) < expected and time.monotonic() < deadline:
                message = client.poll(0.2)
                if message is not None and message.error() is None:
                    messages.append(message)
            extra_deadline = time.monotonic() + 0.5
            while time.monotonic() < extra_deadline:
                message = client.poll(0.1)
                if message is not None and message.error() is None:
                    messages.append(message)
            return messages
        finally:
            client.close()

    def committed_offsets(self, group_id: str, topic: str) -> dict[int, int]:
        """Return the committed offset of each partition of `topic` for `group_id`, negative where none is."""
        client = self._client(group_id)
        try:
            partitions = [TopicPartition(topic, partition) for partition in self._partitions(client, topic)]
            return {item.partition: item.offset for item in client.committed(partitions, timeout=ADMIN_TIMEOUT_SECONDS)}
        finally:
            client.close()

    def group_ids(self) -> list[str]:
        """Return the consumer groups on the broker whose ids start with the current topic prefix."""
        admin = AdminClient({"bootstrap.servers": django_settings.KAFKA_BOOTSTRAP_SERVERS})
        listed = admin.list_consumer_groups(request_timeout=ADMIN_TIMEOUT_SECONDS).result()
        prefix = django_settings.KAFKA_TOPIC_PREFIX + "."
        return sorted(group.group_id for group in listed.valid if group.group_id.startswith(prefix))

    def committed_to_end(self, group_id: str, topic: str) -> bool:
        """Tell whether `group_id` committed every non-empty partition of `topic` up to its end."""
        committed = self.committed_offsets(group_id, topic)
        return all(committed[partition] == end for partition, end in self.end_offsets(topic).items() if end > 0)

    def end_offsets(self, topic: str) -> dict[int, int]:
        """Return the high watermark of each partition of `topic`."""
        client = self._client(f"{topic}.test-watermarks")
        try:
            return {
                partition: client.get_watermark_offsets(TopicPartition(topic, partition), timeout=ADMIN_TIMEOUT_SECONDS)[1]
                for partition in self._partitions(client, topic)
            }
        finally:
            client.close()


@pytest.fixture
def kafka_inspector(kafka_topic_prefix) -> KafkaInspector:
    return KafkaInspector()


def _delete_topics_and_groups(prefix: str) -> None:
    # Best effort: a leftover topic or group on the shared broker costs disk, never a wrong result.
    admin = AdminClient({"bootstrap.servers": django_settings.KAFKA_BOOTSTRAP_SERVERS})
    try:
        listed = admin.list_consumer_groups(request_timeout=ADMIN_TIMEOUT_SECONDS).result()
        group_ids = [group.group_id for group in listed.valid if group.group_id.startswith(prefix + ".")]
        if group_ids:
            _wait_all(admin.delete_consumer_groups(group_ids, request_timeout=ADMIN_TIMEOUT_SECONDS))
    except KafkaException:
        pass

    topics = [name for name in admin.list_topics(timeout=ADMIN_TIMEOUT_SECONDS).topics if name.startswith(prefix + ".")]
    if topics:
        _wait_all(admin.delete_topics(topics, operation_timeout=ADMIN_TIMEOUT_SECONDS))


def _wait_all(futures: dict) -> None:
    for future in futures.values():
        try:
            future.result()
        except KafkaException:
            pass

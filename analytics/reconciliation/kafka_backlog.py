"""Find the order events that the analytics consumer group has not consumed yet.

For each partition of the order topic, the backlog is the messages from the
group's committed offset up to the high watermark. A group with no committed
offset starts at the oldest message still retained. Messages are keyed by
order id and carry the aggregate version in a header, so the backlog is read
without parsing payloads.

Neither client joins the group or commits: one only fetches the group's
committed offsets, and the other reads assigned partitions under a group id
of its own.
"""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition
from django.conf import settings

from cdc.envelope import Envelope

# Upper bound for one metadata, offset or watermark request.
REQUEST_TIMEOUT_SECONDS = 10.0
# Maximum wait for the next backlog message before the read fails.
READ_TIMEOUT_SECONDS = 30.0


class BacklogUnavailable(Exception):
    """Raised when Kafka is unreachable, because lag then cannot be distinguished from lost events."""


@dataclass(frozen=True)
class PartitionBacklog:
    partition: int
    # None when the group has not committed an offset for the partition yet.
    committed: int | None
    low: int
    high: int

    @property
    def start(self) -> int:
        # An offset below the low watermark points at messages that retention deleted.
        return max(self.committed if self.committed is not None else self.low, self.low)

    @property
    def pending(self) -> int:
        return max(self.high - self.start, 0)


@dataclass
class ConsumerBacklog:
    """Messages of one topic that a consumer group has not consumed, by (order id, version)."""

    topic: str
    group_id: str
    partitions: list[PartitionBacklog] = field(default_factory=list)
    versions: set[tuple[uuid.UUID, int]] = field(default_factory=set)
    # Backlog messages whose key or version could not be read; the consumer dead-letters them.
    unreadable: int = 0

    @property
    def pending_messages(self) -> int:
        return sum(partition.pending for partition in self.partitions)

    def as_dict(self) -> dict:
        return {
            "topic": self.topic,
            "group_id": self.group_id,
            "pending_messages": self.pending_messages,
            "unreadable_messages": self.unreadable,
            "partitions": [
                {
                    "partition": partition.partition,
                    "committed_offset": partition.committed,
                    "low_watermark": partition.low,
                    "high_watermark": partition.high,
                    "pending": partition.pending,
                }
                for partition in self.partitions
            ],
        }


def consumer_backlog(*, group_id: str, topic: str) -> ConsumerBacklog:
    """Read the group's committed offsets and the messages after them; raises BacklogUnavailable when Kafka fails."""
    backlog = ConsumerBacklog(topic=topic, group_id=group_id)
    offsets_client = Consumer(_config(group_id))
    try:
        metadata = offsets_client.list_topics(topic, timeout=REQUEST_TIMEOUT_SECONDS)
        topic_metadata = metadata.topics.get(topic)
        # No topic yet means nothing was ever published, so nothing is pending.
        if topic_metadata is None or topic_metadata.error is not None:
            return backlog
        partitions = [TopicPartition(topic, partition) for partition in sorted(topic_metadata.partitions)]
        committed = offsets_client.committed(partitions, timeout=REQUEST_TIMEOUT_SECONDS)
        for item in committed:
            low, high = offsets_client.get_watermark_offsets(item, timeout=REQUEST_TIMEOUT_SECONDS)
            backlog.partitions.append(
                PartitionBacklog(partition=item.partition, committed=item.offset if item.offset >= 0 else None, low=low, high=high)
            )
    except KafkaException as error:
        raise BacklogUnavailable(f"Kafka did not return the offsets of group {group_id} on {topic}: {error}.") from error
    finally:
        offsets_client.close()

    _read_backlog(backlog)
    return backlog


def _read_backlog(backlog: ConsumerBacklog) -> None:
    ranges = {item.partition: (item.start, item.high) for item in backlog.partitions if item.pending > 0}
    if not ranges:
        return
    reader = Consumer(_config(f"{backlog.group_id}.reconcile-{uuid.uuid4().hex[:8]}"))
    try:
        reader.assign([TopicPartition(backlog.topic, partition, start) for partition, (start, _end) in ranges.items()])
        pending = set(ranges)
        last_progress = time.monotonic()
        while pending:
            message = reader.poll(1.0)
            if message is None:
                if time.monotonic() - last_progress > READ_TIMEOUT_SECONDS:
                    raise BacklogUnavailable(
                        f"No message arrived for {READ_TIMEOUT_SECONDS:.0f} s from partitions {sorted(pending)} of "
                        f"{backlog.topic}; check that the broker is up and run the reconciliation again."
                    )
                continue
            last_progress = time.monotonic()
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    pending.discard(message.partition())
                    continue
                raise BacklogUnavailable(f"Reading {backlog.topic} failed: {error}.")

            end = ranges[message.partition()][1]
            if message.offset() < end:
                _record(backlog, message)
            if message.offset() + 1 >= end:
                pending.discard(message.partition())
    except KafkaException as error:
        raise BacklogUnavailable(f"Reading {backlog.topic} failed: {error}.") from error
    finally:
        reader.close()


def _record(backlog: ConsumerBacklog, message: Message) -> None:
    headers = dict(message.headers() or [])
    try:
        order_id = uuid.UUID((message.key() or b"").decode())
        version = int(headers["aggregate_version"])
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        # A producer that set no headers still wrote the envelope.
        try:
            envelope = Envelope.from_json(message.value())
            order_id, version = uuid.UUID(envelope.aggregate_id), envelope.aggregate_version
        except (ValueError, KeyError, TypeError):
            backlog.unreadable += 1
            return
    backlog.versions.add((order_id, version))


def _config(group_id: str) -> dict:
    return {
        "bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS,
        "group.id": group_id,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": True,
        "auto.offset.reset": "earliest",
    }

"""Bounded re-reads of a consumer's topics, with the same handler and deduplication as the live loop.

Both replays assign partitions directly instead of joining a group, read up
to the end offsets captured when they start, and then stop, so they never
race the live group for partitions and always terminate.

- `replay_dead_letters` reads `<topic>.dlq` with the group `<group>.dlq-replay`
  and commits after each message, so a second run starts after the first. A
  dead letter that fails again is produced again to the end of the same
  dead-letter topic with its attempt count increased, and the run moves on.
- `replay_from_timestamp` starts at the first offset at or after a time, with
  a group id of its own that never commits, so the live group's offsets stay
  where they are. Running it twice changes nothing, because every event it
  applies gets its ProcessedEvent row.
"""
from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from confluent_kafka import OFFSET_END, Consumer, KafkaError, KafkaException, Message, TopicPartition

from cdc.consumers.base import EventConsumer, Source
from cdc.consumers.config import REQUEST_TIMEOUT_SECONDS, ConsumerSettings, consumer_config, ensure_topics
from cdc.consumers.dead_letters import DeadLetterPublisher, read_dead_letter_info
from cdc.consumers.processing import MessageProcessor, Outcome
from cdc.envelope import dead_letter_topic
from commerce.logging import get_logger

log = get_logger(__name__)

# Maximum wait for the next message while assigned partitions have not reached their end offsets.
READ_TIMEOUT_SECONDS = 30.0

# Outcome of a dead letter that another consumer wrote to the shared dead-letter topic.
OTHER_CONSUMER = "other_consumer"
# Outcome of a message on a dead-letter topic without the framework's headers.
UNREADABLE = "unreadable"


class ReplayTimeout(Exception):
    """Raised when assigned partitions stop delivering before their captured end offsets."""


@dataclass
class PartitionRange:
    """Offsets [start, end) of one partition to read; `end` is the high watermark when the replay started."""

    topic: str
    partition: int
    start: int
    end: int


def replay_dead_letters(
    consumer: EventConsumer, *, stop_event: threading.Event, consumer_settings: ConsumerSettings | None = None
) -> Counter[str]:
    """Re-drive the consumer's dead letters written before this call; return the count of each outcome."""
    consumer_settings = consumer_settings or ConsumerSettings.from_django()
    group_id = f"{consumer.group_id()}.dlq-replay"
    topics = [dead_letter_topic(topic) for topic in consumer.topics()]
    ensure_topics(topics)
    kafka_consumer = Consumer(consumer_config(group_id, consumer_settings, **{"enable.partition.eof": True}))
    stats: Counter[str] = Counter()
    replay_log = log.bind(consumer=consumer.name, group_id=group_id)
    replay_log.info("dead_letter_replay_started", topics=topics)

    dead_letters = DeadLetterPublisher(consumer=consumer.name, timeout_seconds=consumer_settings.dead_letter_timeout_seconds)
    processor = MessageProcessor(
        consumer, consumer_settings=consumer_settings, dead_letters=dead_letters, stop_event=stop_event
    )

    def handle(message: Message) -> bool:
        info = read_dead_letter_info(message)
        if info is None:
            replay_log.error(
                "dead_letter_unreadable", topic=message.topic(), partition=message.partition(), offset=message.offset()
            )
            stats[UNREADABLE] += 1
        elif info.consumer != consumer.name:
            stats[OTHER_CONSUMER] += 1
        else:
            outcome = processor.process(message, source=info.source, prior_attempts=info.attempts)
            stats[outcome.value] += 1
            if outcome is Outcome.ABANDONED:
                return False
        # Synchronous, so a second run right after this one starts past every message handled here.
        kafka_consumer.commit(message=message, asynchronous=False)
        return True

    try:
        ranges = _committed_ranges(kafka_consumer, topics)
        _read_ranges(
            kafka_consumer, ranges, handle, stop_event=stop_event, poll_timeout=consumer_settings.poll_timeout_seconds
        )
    finally:
        kafka_consumer.close()
        dead_letters.close()
        replay_log.info("dead_letter_replay_stopped", **stats)
    return stats


def replay_from_timestamp(
    consumer: EventConsumer,
    *,
    timestamp_ms: int,
    stop_event: threading.Event,
    consumer_settings: ConsumerSettings | None = None,
) -> Counter[str]:
    """Re-apply the consumer's events with a timestamp at or after `timestamp_ms`; return the count of each outcome."""
    consumer_settings = consumer_settings or ConsumerSettings.from_django()
    # Unique per run and never committed, so no replay moves the offsets of the live group or of another replay.
    group_id = f"{consumer.group_id()}.replay-{uuid.uuid4().hex[:8]}"
    topics = consumer.topics()
    kafka_consumer = Consumer(consumer_config(group_id, consumer_settings, **{"enable.partition.eof": True}))
    stats: Counter[str] = Counter()
    replay_log = log.bind(consumer=consumer.name, group_id=group_id)
    replay_log.info("replay_started", topics=topics, timestamp_ms=timestamp_ms)

    dead_letters = DeadLetterPublisher(consumer=consumer.name, timeout_seconds=consumer_settings.dead_letter_timeout_seconds)
    processor = MessageProcessor(
        consumer, consumer_settings=consumer_settings, dead_letters=dead_letters, stop_event=stop_event
    )

    def handle(message: Message) -> bool:
        source = Source(topic=message.topic(), partition=message.partition(), offset=message.offset())
        outcome = processor.process(message, source=source)
        stats[outcome.value] += 1
        return outcome is not Outcome.ABANDONED

    try:
        ranges = _timestamp_ranges(kafka_consumer, topics, timestamp_ms)
        _read_ranges(
            kafka_consumer, ranges, handle, stop_event=stop_event, poll_timeout=consumer_settings.poll_timeout_seconds
        )
    finally:
        kafka_consumer.close()
        dead_letters.close()
        replay_log.info("replay_stopped", **stats)
    return stats


def _partitions(kafka_consumer: Consumer, topics: list[str]) -> list[TopicPartition]:
    metadata = kafka_consumer.list_topics(timeout=REQUEST_TIMEOUT_SECONDS)
    partitions = []
    for topic in topics:
        topic_metadata = metadata.topics.get(topic)
        # A topic that does not exist yet has nothing to replay.
        if topic_metadata is None or topic_metadata.error is not None:
            continue
        partitions.extend(TopicPartition(topic, partition) for partition in sorted(topic_metadata.partitions))
    return partitions


def _committed_ranges(kafka_consumer: Consumer, topics: list[str]) -> list[PartitionRange]:
    partitions = _partitions(kafka_consumer, topics)
    if not partitions:
        return []
    committed = kafka_consumer.committed(partitions, timeout=REQUEST_TIMEOUT_SECONDS)
    ranges = []
    for partition in committed:
        low, high = kafka_consumer.get_watermark_offsets(partition, timeout=REQUEST_TIMEOUT_SECONDS)
        # No committed offset yet (negative), or one that retention deleted: start at the oldest message kept.
        start = max(partition.offset, low)
        if start < high:
            ranges.append(PartitionRange(partition.topic, partition.partition, start, high))
    return ranges


def _timestamp_ranges(kafka_consumer: Consumer, topics: list[str], timestamp_ms: int) -> list[PartitionRange]:
    partitions = [
        TopicPartition(partition.topic, partition.partition, timestamp_ms)
        for partition in _partitions(kafka_consumer, topics)
    ]
    if not partitions:
        return []
    found = kafka_consumer.offsets_for_times(partitions, timeout=REQUEST_TIMEOUT_SECONDS)
    ranges = []
    for partition in found:
        # OFFSET_END: the partition has no message at or after the timestamp.
        if partition.offset == OFFSET_END or partition.offset < 0:
            continue
        _low, high = kafka_consumer.get_watermark_offsets(partition, timeout=REQUEST_TIMEOUT_SECONDS)
        if partition.offset < high:
            ranges.append(PartitionRange(partition.topic, partition.partition, partition.offset, high))
    return ranges


def _read_ranges(
    kafka_consumer: Consumer,
    ranges: list[PartitionRange],
    handle: Callable[[Message], bool],
    *,
    stop_event: threading.Event,
    poll_timeout: float,
) -> None:
    """Feed every message in `ranges` to `handle` in offset order per partition; stop early when it returns False."""
    if not ranges:
        return
    kafka_consumer.assign([TopicPartition(item.topic, item.partition, item.start) for item in ranges])
    ends = {(item.topic, item.partition): item.end for item in ranges}
    pending = set(ends)
    last_progress = time.monotonic()

    while pending and not stop_event.is_set():
        message = kafka_consumer.poll(poll_timeout)
        if message is None:
            if time.monotonic() - last_progress >= READ_TIMEOUT_SECONDS:
                waiting = ", ".join(f"{topic}[{partition}]" for topic, partition in sorted(pending))
                raise ReplayTimeout(
                    f"No message arrived for {READ_TIMEOUT_SECONDS:.0f} s from {waiting}; check that the broker is up "
                    "and run the command again."
                )
            continue

        last_progress = time.monotonic()
        key = (message.topic(), message.partition())
        error = message.error()
        if error is not None:
            if error.code() == KafkaError._PARTITION_EOF:
                pending.discard(key)
                continue
            if error.fatal():
                raise KafkaException(error)
            log.warning("replay_poll_error", error=str(error), code=error.name(), topic=message.topic())
            continue

        if key not in pending:
            continue
        # Messages from the end offset on arrived after the replay started; the live group applies them.
        if message.offset() >= ends[key]:
            pending.discard(key)
            continue
        if not handle(message):
            return
        if message.offset() + 1 >= ends[key]:
            pending.discard(key)

"""The live loop of one consumer group member, behind `manage.py run_consumer`.

Offsets: each message's offset is stored after its transaction committed (or
its dead letter was acknowledged), then the stored offsets are committed
asynchronously. Deduplication makes a re-delivery harmless, so a lost
asynchronous commit costs one skipped duplicate and no wrong write, while a
synchronous commit would add a broker round trip to every message. Offsets
are committed synchronously where it matters: when partitions are revoked
(so the next owner starts after the last applied message) and on close.
"""
from __future__ import annotations

import threading
import time
from collections import Counter

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from cdc.consumers.base import EventConsumer, Source
from cdc.consumers.config import ConsumerSettings, consumer_config, ensure_topics
from cdc.consumers.dead_letters import DeadLetterPublisher
from cdc.consumers.processing import MessageProcessor, Outcome
from cdc.envelope import dead_letter_topic
from commerce.logging import get_logger

log = get_logger(__name__)

# How long an idle timeout waits for the first partition assignment.
JOIN_WAIT_SECONDS = 30.0


class ConsumerRunner:
    """Consume a consumer's topics as a member of its group until stopped, idle or at a message limit."""

    def __init__(self, consumer: EventConsumer, *, consumer_settings: ConsumerSettings | None = None) -> None:
        self.consumer = consumer
        self.settings = consumer_settings or ConsumerSettings.from_django()
        self.stats: Counter[str] = Counter()
        self._stop_event = threading.Event()
        self._idle_since = time.monotonic()
        self._assigned = False
        self._log = log.bind(consumer=consumer.name)

    def stop(self) -> None:
        """Ask the loop to stop after the current message; safe to call from another thread."""
        self._stop_event.set()

    def run(self, *, max_messages: int | None = None, idle_timeout: float | None = None) -> Counter[str]:
        """Consume until stop(), `max_messages` messages, or `idle_timeout` seconds without a message.

        The idle time restarts at every partition assignment, so a slow group
        join does not count as idle. Returns the count of each Outcome value.
        Raises DeadLetterError when a dead letter could not be produced,
        after committing the offsets of the messages before it.
        """
        topics = self.consumer.topics()
        ensure_topics(topics + [dead_letter_topic(topic) for topic in topics])
        group_id = self.consumer.group_id()
        kafka_consumer = Consumer(
            consumer_config(group_id, self.settings, on_commit=self._log_commit_result)
        )
        dead_letters = DeadLetterPublisher(
            consumer=self.consumer.name, timeout_seconds=self.settings.dead_letter_timeout_seconds
        )
        processor = MessageProcessor(
            self.consumer, consumer_settings=self.settings, dead_letters=dead_letters, stop_event=self._stop_event
        )

        kafka_consumer.subscribe(topics, on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost)
        self._log.info(
            "consumer_started", group_id=group_id, topics=topics, max_messages=max_messages, idle_timeout=idle_timeout
        )
        self._idle_since = time.monotonic()
        try:
            self._loop(kafka_consumer, processor, max_messages=max_messages, idle_timeout=idle_timeout)
        finally:
            _commit_stored(kafka_consumer, self._log, asynchronous=False)
            # close() leaves the group at once, so the partitions move to another
            # member without waiting for the session timeout.
            kafka_consumer.close()
            dead_letters.close()
            self._log.info("consumer_stopped", group_id=group_id, **self.stats)
        return self.stats

    def _loop(
        self, kafka_consumer: Consumer, processor: MessageProcessor, *, max_messages: int | None, idle_timeout: float | None
    ) -> None:
        handled = 0
        while not self._stop_event.is_set():
            if max_messages is not None and handled >= max_messages:
                self._log.info("consumer_message_limit_reached", max_messages=max_messages)
                return

            message = kafka_consumer.poll(self.settings.poll_timeout_seconds)
            if message is None:
                # Until the first assignment the group may still be forming (on a fresh
                # broker that includes creating __consumer_offsets), which is not idleness.
                limit = idle_timeout if self._assigned or idle_timeout is None else max(idle_timeout, JOIN_WAIT_SECONDS)
                if limit is not None and time.monotonic() - self._idle_since >= limit:
                    self._log.info("consumer_idle_timeout", idle_timeout=idle_timeout)
                    return
                continue
            if message.error() is not None:
                _check_message_error(message, self._log)
                continue

            self._idle_since = time.monotonic()
            handled += 1
            source = Source(topic=message.topic(), partition=message.partition(), offset=message.offset())
            outcome = processor.process(message, source=source)
            self.stats[outcome.value] += 1
            if outcome is Outcome.ABANDONED:
                return
            self._acknowledge(kafka_consumer, message)

    def _acknowledge(self, kafka_consumer: Consumer, message: Message) -> None:
        """Store and commit the offset after `message`; called only once its outcome is durable."""
        try:
            kafka_consumer.store_offsets(message=message)
        except KafkaException as error:
            # The partition was lost while the message was processed (session
            # timeout). Its new owner re-delivers the message and skips it as a duplicate.
            self._log.warning(
                "consumer_offset_store_failed",
                error=str(error),
                topic=message.topic(),
                partition=message.partition(),
                offset=message.offset(),
            )
            return
        _commit_stored(kafka_consumer, self._log, asynchronous=True)

    def _on_assign(self, kafka_consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._idle_since = time.monotonic()
        self._assigned = True
        self._log.info("consumer_partitions_assigned", partitions=_describe(partitions))

    def _on_revoke(self, kafka_consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Revocation runs inside poll(), between two messages, so every applied
        # message has its offset stored; committing them now keeps the next
        # owner from re-delivering them.
        self._log.info("consumer_partitions_revoked", partitions=_describe(partitions))
        _commit_stored(kafka_consumer, self._log, asynchronous=False)

    def _on_lost(self, kafka_consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Another member may own these partitions already, so committing could move its offsets back.
        self._log.warning("consumer_partitions_lost", partitions=_describe(partitions))

    def _log_commit_result(self, error: KafkaError | None, partitions: list[TopicPartition]) -> None:
        if error is not None and error.code() != KafkaError._NO_OFFSET:
            self._log.warning("consumer_commit_failed", error=str(error), partitions=_describe(partitions))


def _commit_stored(kafka_consumer: Consumer, consumer_log, *, asynchronous: bool) -> None:
    try:
        kafka_consumer.commit(asynchronous=asynchronous)
    except KafkaException as error:
        if error.args[0].code() == KafkaError._NO_OFFSET:
            return
        # The uncommitted messages are re-delivered later and skipped as duplicates.
        consumer_log.warning("consumer_commit_failed", error=str(error))


def _check_message_error(message: Message, consumer_log) -> None:
    error = message.error()
    if error.fatal():
        raise KafkaException(error)
    consumer_log.warning("consumer_poll_error", error=str(error), code=error.name(), topic=message.topic())


def _describe(partitions: list[TopicPartition]) -> list[str]:
    return [f"{partition.topic}[{partition.partition}]" for partition in partitions]

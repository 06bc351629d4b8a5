"""Dead-letter topics: publish a message that keeps failing, and read back where it came from.

A dead letter is the original message (key, value and headers unchanged)
produced to `<original topic>.dlq`, plus these headers:

    dlq.consumer            name of the consumer that gave up
    dlq.error.type          qualified class name of the last exception
    dlq.error.message       its message, cut to 1,000 characters
    dlq.error.traceback     the end of its traceback, cut to 4,000 characters
    dlq.attempts            handler attempts over every run, re-drives included
    dlq.original.topic      topic, partition and offset of the message before
    dlq.original.partition  it was first dead-lettered
    dlq.original.offset
    dlq.failed_at           ISO 8601 UTC time of the last failure
"""
from __future__ import annotations

import traceback
from dataclasses import dataclass

from confluent_kafka import Message, Producer
from django.utils import timezone

from cdc.consumers.base import Source
from cdc.consumers.config import producer_config
from cdc.envelope import dead_letter_topic

HEADER_PREFIX = "dlq."
MAX_MESSAGE_CHARS = 1_000
# The end of a traceback names the frame that raised, so truncation keeps the end.
MAX_TRACEBACK_CHARS = 4_000


class DeadLetterError(Exception):
    """Raised when the broker did not acknowledge a dead letter, so the failed message's offset must not be committed."""


@dataclass(frozen=True)
class DeadLetterInfo:
    """The framework's headers of a dead letter, parsed."""

    consumer: str
    attempts: int
    source: Source


def dead_letter_headers(*, consumer: str, error: BaseException, attempts: int, source: Source) -> list[tuple[str, bytes]]:
    error_type = type(error)
    trace = "".join(traceback.format_exception(error))
    if len(trace) > MAX_TRACEBACK_CHARS:
        trace = "..." + trace[-MAX_TRACEBACK_CHARS:]
    values = {
        "consumer": consumer,
        "error.type": f"{error_type.__module__}.{error_type.__qualname__}",
        "error.message": str(error)[:MAX_MESSAGE_CHARS],
        "error.traceback": trace,
        "attempts": str(attempts),
        "original.topic": source.topic,
        "original.partition": str(source.partition),
        "original.offset": str(source.offset),
        "failed_at": timezone.now().isoformat(),
    }
    return [(HEADER_PREFIX + name, value.encode()) for name, value in values.items()]


def read_dead_letter_info(message: Message) -> DeadLetterInfo | None:
    """Parse the framework's headers of a message on a dead-letter topic; None when any is missing or invalid."""
    headers = {name: value for name, value in (message.headers() or []) if name.startswith(HEADER_PREFIX)}
    try:
        return DeadLetterInfo(
            consumer=headers[HEADER_PREFIX + "consumer"].decode(),
            attempts=int(headers[HEADER_PREFIX + "attempts"]),
            source=Source(
                topic=headers[HEADER_PREFIX + "original.topic"].decode(),
                partition=int(headers[HEADER_PREFIX + "original.partition"]),
                offset=int(headers[HEADER_PREFIX + "original.offset"]),
            ),
        )
    except (KeyError, ValueError, AttributeError):
        # AttributeError: a header whose value is None (librdkafka allows that).
        return None


class DeadLetterPublisher:
    """Produce dead letters and wait for the broker's acknowledgement of each one."""

    def __init__(self, *, consumer: str, timeout_seconds: float) -> None:
        self._consumer = consumer
        self._timeout_seconds = timeout_seconds
        self._producer = Producer(producer_config(delivery_timeout_seconds=timeout_seconds))

    def publish(self, message: Message, *, source: Source, error: BaseException, attempts: int) -> str:
        """Produce `message` to the dead-letter topic of `source.topic` and return that topic.

        Raises DeadLetterError when the delivery fails or is not confirmed in
        time. Earlier dlq.* headers (from a re-driven dead letter) are
        replaced, so each header appears once.
        """
        topic = dead_letter_topic(source.topic)
        original_headers = [(name, value) for name, value in (message.headers() or []) if not name.startswith(HEADER_PREFIX)]
        headers = original_headers + dead_letter_headers(
            consumer=self._consumer, error=error, attempts=attempts, source=source
        )
        reports: list[object] = []
        self._producer.produce(
            topic,
            key=message.key(),
            value=message.value(),
            headers=headers,
            on_delivery=lambda delivery_error, _message: reports.append(delivery_error),
        )
        # message.timeout.ms equals the timeout, so librdkafka has reported by then; the margin covers the callback.
        self._producer.flush(self._timeout_seconds + 5)
        if not reports:
            raise DeadLetterError(f"The broker did not confirm the dead letter on {topic} within {self._timeout_seconds} s.")
        if reports[0] is not None:
            raise DeadLetterError(f"Producing the dead letter to {topic} failed: {reports[0]}.")
        return topic

    def close(self) -> None:
        self._producer.flush(self._timeout_seconds)

"""Publish outbox events to Kafka and wait until the broker acknowledged every one.

The producer is idempotent with acks=all and no message timeout. librdkafka
then retries every message until it is written, in produce order per
partition, and a Kafka outage only makes `publish` wait. A finite
message.timeout.ms would let a timed-out message leave a gap that a later one
fills, and repeating the batch would then put an aggregate's versions out of
order on the topic.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from confluent_kafka import KafkaError, KafkaException, Message, Producer
from django.conf import settings

from cdc.envelope import Envelope
from cdc.relay.batch import OutboxRow
from commerce.logging import get_logger

log = get_logger(__name__)

# Fault injection for the crash tests: when set to N, the process exits right
# after the broker acknowledged the Nth message of a batch, before the source
# confirms anything, as a relay killed mid-batch would.
EXIT_AFTER_ACKS_ENV = "CDC_RELAY_TEST_EXIT_AFTER_ACKS"
EXIT_AFTER_ACKS_CODE = 86

_WAIT_LOG_INTERVAL_SECONDS = 10.0
_ERROR_LOG_INTERVAL_SECONDS = 30.0


def producer_config(*, client_id: str = "cdc-relay") -> dict[str, object]:
    """Return the librdkafka settings of the relay's producer (the benchmark reuses them for its raw ceiling)."""
    return {
        "bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS,
        "client.id": client_id,
        "enable.idempotence": True,
        "acks": "all",
        "message.timeout.ms": 0,  # 0 is "never time out"; see the module docstring.
        # Fails the producer instead of skipping a message after a permanent
        # broker error, so no later message fills the gap. librdkafka marks
        # this property experimental.
        "enable.gapless.guarantee": True,
        # The Java client's partitioner, so a JVM producer or Kafka Streams
        # job keyed by aggregate id picks the same partitions.
        "partitioner": "murmur2_random",
    }


class DeliveryFailed(RuntimeError):
    """At least one message of the batch was not acknowledged; nothing of the batch may be confirmed."""


@dataclass
class _Deliveries:
    acknowledged: int = 0
    failed: int = 0
    first_error: KafkaError | None = None
    fatal: bool = False

    def record(self, error: KafkaError | None, message: Message) -> None:
        if error is None:
            self.acknowledged += 1
            return
        self.failed += 1
        self.fatal = self.fatal or error.fatal()
        if self.first_error is None:
            self.first_error = error


class KafkaPublisher:
    """An idempotent producer that publishes one batch at a time and reports whether all of it was acknowledged."""

    def __init__(self, *, stop_event: threading.Event, stop_timeout_seconds: float, client_id: str = "cdc-relay") -> None:
        self._stop_event = stop_event
        self._stop_timeout_seconds = stop_timeout_seconds
        self._client_id = client_id
        self._producer: Producer | None = None
        self._error_log_times: dict[int, float] = {}
        self._suppressed_errors: dict[int, int] = {}
        exit_after = os.environ.get(EXIT_AFTER_ACKS_ENV)
        self._exit_after_acks = int(exit_after) if exit_after else None
        if self._exit_after_acks is not None:
            log.warning("relay_fault_injection_enabled", variable=EXIT_AFTER_ACKS_ENV, exit_after_acks=self._exit_after_acks)

    def _build_producer(self) -> Producer:
        return Producer(
            {
                **producer_config(client_id=self._client_id),
                "error_cb": self._on_client_error,
                "logger": logging.getLogger("cdc.relay.librdkafka"),
            }
        )

    def publish(self, events: Sequence[OutboxRow]) -> None:
        """Produce `events` in order and wait until the broker acknowledged every one.

        Raises DeliveryFailed when a message fails or when a stop request
        waited stop_timeout_seconds for acknowledgements that did not come.
        """
        if self._producer is None:
            self._producer = self._build_producer()
        deliveries = _Deliveries()
        for index, event in enumerate(events, start=1):
            envelope = Envelope.from_outbox(event)
            self._produce(envelope, deliveries)
            if self._exit_after_acks is not None and index == self._exit_after_acks:
                self._wait_for_acknowledgements(deliveries)
                log.warning("relay_fault_injection_exit", acknowledged=deliveries.acknowledged, event_id=envelope.event_id)
                os._exit(EXIT_AFTER_ACKS_CODE)
        self._wait_for_acknowledgements(deliveries)
        if deliveries.failed:
            error = deliveries.first_error
            raise DeliveryFailed(
                f"{deliveries.failed} of {len(events)} messages were not acknowledged; first error: {error}"
                + (" (fatal: the producer is rebuilt)" if deliveries.fatal else "")
            )

    def _produce(self, envelope: Envelope, deliveries: _Deliveries) -> None:
        while True:
            try:
                self._producer.produce(
                    envelope.topic,
                    key=envelope.key,
                    value=envelope.to_json(),
                    headers=envelope.headers(),
                    on_delivery=deliveries.record,
                )
                return
            except BufferError:
                # The local queue is full (queue.buffering.max.messages); serve
                # delivery reports to make room, then produce the same message.
                self._producer.poll(0.1)
            except KafkaException as exc:
                # Raised before the message was queued, e.g. larger than
                # message.max.bytes. Later messages are not produced, so
                # nothing after this one can reach the topic first.
                raise DeliveryFailed(f"Producing event {envelope.event_id} to {envelope.topic} failed: {exc}") from exc

    def _wait_for_acknowledgements(self, deliveries: _Deliveries) -> None:
        started = time.monotonic()
        next_log = started + _WAIT_LOG_INTERVAL_SECONDS
        stop_seen_at: float | None = None
        while self._producer.flush(1.0) > 0:
            now = time.monotonic()
            if now >= next_log:
                log.warning(
                    "relay_waiting_for_kafka",
                    pending=len(self._producer),
                    acknowledged=deliveries.acknowledged,
                    waited_seconds=round(now - started, 1),
                )
                next_log = now + _WAIT_LOG_INTERVAL_SECONDS
            if self._stop_event.is_set():
                stop_seen_at = stop_seen_at or now
                if now - stop_seen_at >= self._stop_timeout_seconds:
                    raise DeliveryFailed(
                        f"Stopped with {len(self._producer)} messages unacknowledged after "
                        f"{self._stop_timeout_seconds}s; they are published again on the next start."
                    )

    def reset(self) -> None:
        """Discard the producer and its queue after a failed batch; the next publish builds a fresh one.

        A failed batch is repeated from its first event, so messages still
        queued from the failed attempt must not be sent after the repeat.
        """
        if self._producer is None:
            return
        self._producer.purge(in_queue=True, in_flight=True)
        self._producer.flush(0)
        self._producer = None

    def close(self) -> None:
        self.reset()

    def _on_client_error(self, error: KafkaError) -> None:
        # librdkafka repeats transport errors on every reconnect attempt while
        # Kafka is down, so each error code is logged at most once per
        # interval, except fatal errors, which are always logged.
        code = error.code()
        now = time.monotonic()
        if now - self._error_log_times.get(code, float("-inf")) < _ERROR_LOG_INTERVAL_SECONDS and not error.fatal():
            self._suppressed_errors[code] = self._suppressed_errors.get(code, 0) + 1
            return
        self._error_log_times[code] = now
        log.warning(
            "relay_kafka_error",
            error=error.str(),
            code=error.name(),
            fatal=error.fatal(),
            suppressed=self._suppressed_errors.pop(code, 0),
        )

"""Apply one Kafka message to one consumer: decode, deduplicate, retry, dead-letter.

The caller (the live runner or a replay) stores and commits the message's
offset only after `MessageProcessor.process` returned, that is after the
handler's transaction committed or the dead letter was acknowledged. A crash
in between re-delivers the message, and the record that the consumer's
`claim_event` wrote turns the second delivery into a no-op.
"""
from __future__ import annotations

import enum
import threading
import time
import uuid

from confluent_kafka import Message
from django.db import DEFAULT_DB_ALIAS, DatabaseError, close_old_connections, connections, transaction

from cdc.consumers.base import EventConsumer, InvalidEvent, Source
from cdc.consumers.config import ConsumerSettings
from cdc.consumers.dead_letters import DeadLetterPublisher
from cdc.envelope import Envelope
from cdc.models import ProcessedEvent
from commerce.logging import get_logger

log = get_logger(__name__)


class Outcome(enum.Enum):
    APPLIED = "applied"
    # claim_event found the event recorded: an earlier delivery committed.
    DUPLICATE = "duplicate"
    # The is_stale hook found a newer aggregate version already applied.
    STALE = "stale"
    # The consumer does not handle this event type.
    SKIPPED = "skipped"
    DEAD_LETTERED = "dead_lettered"
    # A stop was requested while PostgreSQL was unreachable: the offset must not move.
    ABANDONED = "abandoned"


class InvalidEnvelope(ValueError):
    """Raised for a message value that is not an event envelope; such a message is dead-lettered at once."""


def decode(message: Message) -> Envelope:
    value = message.value()
    if value is None:
        raise InvalidEnvelope("The message has no value (a tombstone), so it carries no event.")
    try:
        envelope = Envelope.from_json(value)
        # ProcessedEvent stores the id as a UUID; any other id could never be recorded.
        uuid.UUID(envelope.event_id)
    except (ValueError, KeyError, TypeError) as error:
        raise InvalidEnvelope(f"The message value is not a valid event envelope: {error!r}.") from error
    return envelope


def apply_event(consumer: EventConsumer, envelope: Envelope, source: Source) -> Outcome:
    """Run the handler and record the event id in one transaction, unless the event id is already recorded."""
    with transaction.atomic(using=consumer.database):
        if not consumer.claim_event(envelope):
            return Outcome.DUPLICATE
        if consumer.is_stale(envelope):
            return Outcome.STALE
        consumer.handle(envelope, source)
    return Outcome.APPLIED


def claim_processed_event(consumer_name: str, envelope: Envelope) -> bool:
    """Insert the ProcessedEvent row first; return False when another delivery already committed it.

    ON CONFLICT DO NOTHING avoids a savepoint and a server-side error per
    duplicate. Inserting before the handler runs makes the unique index a
    lock between two instances that both hold the event during a rebalance.
    The second insert waits for the first transaction to end. It then finds
    the row if that transaction committed, or inserts it if it rolled back.
    """
    connection = connections[DEFAULT_DB_ALIAS]
    table = connection.ops.quote_name(ProcessedEvent._meta.db_table)
    # The table name comes from the model and every value is a parameter, so the f-string injects nothing.
    sql = (
        f"INSERT INTO {table} (consumer, event_id, event_type, processed_at) "  # noqa: S608
        "VALUES (%s, %s, %s, now()) ON CONFLICT (consumer, event_id) DO NOTHING RETURNING id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [consumer_name, envelope.event_id, envelope.type])
        return cursor.fetchone() is not None


def database_available(using: str = DEFAULT_DB_ALIAS) -> bool:
    """Tell whether `SELECT 1` succeeds on the database `using`, after replacing a broken connection."""
    close_old_connections()
    try:
        with connections[using].cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        return False
    return True


class MessageProcessor:
    """Apply messages for one consumer with bounded retries, and dead-letter the ones that keep failing."""

    def __init__(
        self,
        consumer: EventConsumer,
        *,
        consumer_settings: ConsumerSettings,
        dead_letters: DeadLetterPublisher,
        stop_event: threading.Event,
    ) -> None:
        self.consumer = consumer
        self._settings = consumer_settings
        self._dead_letters = dead_letters
        self._stop_event = stop_event

    def process(self, message: Message, *, source: Source, prior_attempts: int = 0) -> Outcome:
        """Apply one message and return what happened to it.

        `source` is the message's own position, or for a re-driven dead
        letter its original position; `prior_attempts` counts attempts made
        before it was dead-lettered. Raises DeadLetterError when a dead letter
        is not acknowledged, and RuntimeError when called inside a transaction,
        where "committed" would not mean committed.
        """
        if connections[self.consumer.database].in_atomic_block:
            raise RuntimeError("MessageProcessor.process must run outside a transaction, so each event commits on its own.")

        message_log = log.bind(
            consumer=self.consumer.name, topic=source.topic, partition=source.partition, offset=source.offset
        )
        try:
            envelope = decode(message)
        except InvalidEnvelope as error:
            message_log.error("consumer_message_invalid", error=str(error))
            return self._dead_letter(
                message, source=source, error=error, attempts=prior_attempts + 1, message_log=message_log
            )

        message_log = message_log.bind(event_id=envelope.event_id, event_type=envelope.type)
        if not self.consumer.accepts(envelope):
            message_log.debug("consumer_event_skipped")
            return Outcome.SKIPPED

        outcome = self._apply_with_retries(
            message, envelope, source=source, prior_attempts=prior_attempts, message_log=message_log
        )
        message_log.debug("consumer_event_processed", outcome=outcome.value)
        return outcome

    def _apply_with_retries(
        self, message: Message, envelope: Envelope, *, source: Source, prior_attempts: int, message_log
    ) -> Outcome:
        attempt = 0
        outage_checks = 0
        while True:
            # Replaces a connection that broke or outlived CONN_MAX_AGE, as Django does between requests.
            close_old_connections()
            try:
                return apply_event(self.consumer, envelope, source)
            except InvalidEvent as error:
                attempt += 1
                message_log.error("consumer_event_invalid", attempt=prior_attempts + attempt, exc_info=error)
                return self._dead_letter(
                    message, source=source, error=error, attempts=prior_attempts + attempt, message_log=message_log
                )
            # A handler may raise anything, and each failure is either retried or dead-lettered.
            except Exception as error:  # noqa: BLE001
                if not database_available(self.consumer.database):
                    # Every message would fail the same way, so an outage must not fill the dead-letter topic.
                    # NOTE: tests cover this branch with a simulated outage only, not with PostgreSQL stopped.
                    outage_checks += 1
                    message_log.warning(
                        "consumer_database_unavailable",
                        outage_checks=outage_checks,
                        exc_info=error if outage_checks == 1 else None,
                    )
                    if self._stop_event.wait(self._settings.database_retry_seconds):
                        message_log.info("consumer_message_abandoned")
                        return Outcome.ABANDONED
                    continue

                attempt += 1
                if attempt >= self._settings.max_attempts:
                    message_log.error("consumer_handler_failed", attempt=prior_attempts + attempt, exc_info=error)
                    return self._dead_letter(
                        message, source=source, error=error, attempts=prior_attempts + attempt, message_log=message_log
                    )

                delay = self._settings.retry_backoff_seconds * 2 ** (attempt - 1)
                message_log.warning(
                    "consumer_handler_retrying", attempt=prior_attempts + attempt, retry_in_seconds=delay, exc_info=error
                )
                # A stop request does not cut the retries short: the current message is finished first.
                time.sleep(delay)

    def _dead_letter(self, message: Message, *, source: Source, error: BaseException, attempts: int, message_log) -> Outcome:
        topic = self._dead_letters.publish(message, source=source, error=error, attempts=attempts)
        message_log.warning("consumer_message_dead_lettered", dead_letter_topic=topic, attempt=attempts)
        return Outcome.DEAD_LETTERED

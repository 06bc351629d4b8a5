"""Consumer settings, librdkafka client configuration and topic creation."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic
from django.conf import settings

from commerce.logging import get_logger

log = get_logger(__name__)

# Upper bound for metadata, watermark, offset and topic-creation requests.
REQUEST_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class ConsumerSettings:
    """Tuning of the consumer framework, read from Django settings named CDC_*."""

    # Handler attempts per message before it goes to the dead-letter topic.
    max_attempts: int = 3
    # Delay before the second attempt; it doubles before each further attempt.
    retry_backoff_seconds: float = 0.5
    # Wait between checks while PostgreSQL is unreachable; an outage never counts as an attempt.
    database_retry_seconds: float = 5.0
    # Maximum block in poll(), so a stop request is noticed within this time.
    poll_timeout_seconds: float = 1.0
    # Maximum wait for the broker to acknowledge a dead letter.
    dead_letter_timeout_seconds: float = 30.0
    # Extra librdkafka consumer properties, e.g. {"session.timeout.ms": 10000}.
    kafka_config: dict[str, Any] | None = None

    @classmethod
    def from_django(cls) -> ConsumerSettings:
        default = cls()
        max_attempts = int(getattr(settings, "CDC_CONSUMER_MAX_ATTEMPTS", default.max_attempts))
        if max_attempts < 1:
            raise ValueError(f"CDC_CONSUMER_MAX_ATTEMPTS must be at least 1, got {max_attempts}.")
        return cls(
            max_attempts=max_attempts,
            retry_backoff_seconds=float(
                getattr(settings, "CDC_CONSUMER_RETRY_BACKOFF_SECONDS", default.retry_backoff_seconds)
            ),
            database_retry_seconds=float(
                getattr(settings, "CDC_CONSUMER_DATABASE_RETRY_SECONDS", default.database_retry_seconds)
            ),
            poll_timeout_seconds=float(
                getattr(settings, "CDC_CONSUMER_POLL_TIMEOUT_SECONDS", default.poll_timeout_seconds)
            ),
            dead_letter_timeout_seconds=float(
                getattr(settings, "CDC_DEAD_LETTER_TIMEOUT_SECONDS", default.dead_letter_timeout_seconds)
            ),
            kafka_config=dict(getattr(settings, "CDC_CONSUMER_KAFKA_CONFIG", {}) or {}),
        )


def consumer_config(group_id: str, consumer_settings: ConsumerSettings, **overrides: Any) -> dict[str, Any]:
    """Build the librdkafka configuration of a consumer that stores and commits offsets itself."""
    config: dict[str, Any] = {
        "bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS,
        "group.id": group_id,
        # Offsets are stored only after the handler's transaction committed, and
        # committed explicitly, so a crash re-delivers and never skips a message.
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        # A new group reads from the start of retention instead of skipping what
        # was published before it first joined.
        "auto.offset.reset": "earliest",
        "error_cb": _log_client_error,
    }
    config.update(consumer_settings.kafka_config or {})
    config.update(overrides)
    return config


def producer_config(*, delivery_timeout_seconds: float) -> dict[str, Any]:
    return {
        "bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS,
        "enable.idempotence": True,
        "acks": "all",
        # Fail the delivery report instead of queueing forever while the broker is away.
        "message.timeout.ms": int(delivery_timeout_seconds * 1000),
        "error_cb": _log_client_error,
    }


def ensure_topics(topics: Iterable[str]) -> None:
    """Create the topics that do not exist yet, with the broker's default partition count and replication.

    A consumer subscribed to a missing topic only notices its creation at the
    next metadata refresh (5 minutes by default in librdkafka), so creating it
    up front keeps the first events from waiting. This also works on brokers
    with auto.create.topics.enable=false. A failure (e.g. no permission to
    create topics) is logged and the consumer carries on.
    """
    names = sorted(set(topics))
    if not names:
        return
    admin = AdminClient({"bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS, "error_cb": _log_client_error})
    futures = admin.create_topics([NewTopic(name) for name in names], operation_timeout=REQUEST_TIMEOUT_SECONDS)
    for name, future in futures.items():
        try:
            future.result(timeout=REQUEST_TIMEOUT_SECONDS)
        except KafkaException as error:
            if error.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS:
                continue
            log.warning("topic_create_failed", topic=name, error=str(error))
        except TimeoutError:
            log.warning("topic_create_failed", topic=name, error="timed out")
        else:
            log.info("topic_created", topic=name)


def _log_client_error(error: KafkaError) -> None:
    # librdkafka reports connection problems here and keeps retrying on its own;
    # only a fatal error ends the client.
    if error.fatal():
        log.error("kafka_client_fatal_error", error=str(error), code=error.name())
    else:
        log.warning("kafka_client_error", error=str(error), code=error.name())

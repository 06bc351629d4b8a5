"""The consumer base class: a name, the topics to read, the event types to apply and a handler."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS

from cdc.envelope import Envelope, topic_for


class InvalidEvent(Exception):
    """Raised by a handler for an event it can never apply, so it is dead-lettered without retries."""


@dataclass(frozen=True)
class Source:
    """Kafka position an event was read from; for a re-driven dead letter, the position before dead-lettering."""

    topic: str
    partition: int
    offset: int


class EventConsumer:
    """Base class of a consumer: subclasses set the class attributes and implement `handle`.

    `handle` runs inside the transaction that also records the event through
    `claim_event`, so its writes and the deduplication record commit or roll
    back together. It must not call the network (Kafka, HTTP, email):
    a retry or a redelivery would repeat the call, and a lock held across it
    blocks the other writers.
    """

    # Registry key and suffix of the consumer group id. Renaming it starts a
    # new group, which reads the topics again from the earliest offset.
    name: ClassVar[str]
    # Aggregate types whose topics the consumer subscribes to, e.g. ("order",).
    aggregate_types: ClassVar[tuple[str, ...]]
    # Event types to apply; None applies every type on the subscribed topics.
    # Other types are skipped, and their offsets are committed like any other.
    event_types: ClassVar[frozenset[str] | None] = None
    # Alias of the database that `handle` writes to. The framework opens the
    # handler's transaction there and checks that database during outages. A
    # consumer that sets another alias also overrides `claim_event`, because
    # the ProcessedEvent table exists only in the default database.
    database: ClassVar[str] = DEFAULT_DB_ALIAS

    def topics(self) -> list[str]:
        return [topic_for(aggregate_type) for aggregate_type in self.aggregate_types]

    def group_id(self) -> str:
        return f"{settings.KAFKA_TOPIC_PREFIX}.{self.name}"

    def accepts(self, envelope: Envelope) -> bool:
        return self.event_types is None or envelope.type in self.event_types

    def claim_event(self, envelope: Envelope) -> bool:
        """Record the event as processed in the open transaction; return False when an earlier delivery recorded it.

        The default inserts a ProcessedEvent row into the default database.
        An override must insert into a table of `database` whose unique key
        makes a concurrent second insert wait for the first transaction, as
        ProcessedEvent's does.
        """
        # Imported here because processing imports this module.
        from cdc.consumers.processing import claim_processed_event

        return claim_processed_event(self.name, envelope)

    def is_stale(self, envelope: Envelope) -> bool:
        """Tell whether the consumer's state already reflects this aggregate version or a newer one.

        The default returns False, so deduplication relies on event ids alone.
        A read model that stores the version it last applied per aggregate
        overrides this to compare it with `envelope.aggregate_version`, which
        also drops an old event that arrives after a newer one (a re-driven
        dead letter, or a replay). The hook runs inside the handler's
        transaction, after `claim_event`, so it may lock the read model's row
        before reading the version.
        """
        return False

    def handle(self, envelope: Envelope, source: Source) -> None:
        """Apply one event; raise InvalidEvent for an event that no retry can fix."""
        raise NotImplementedError(f"{type(self).__name__} must implement handle().")

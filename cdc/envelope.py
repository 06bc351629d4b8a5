"""The Kafka wire format of outbox events, shared by the relay and the consumers.

A message is keyed by the aggregate id, so one aggregate's events stay in one
partition, in order. Its value is the JSON envelope. The envelope fields are
repeated as headers, so a consumer can route or skip without parsing the body.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.conf import settings

HEADER_FIELDS = ("event_id", "type", "version", "aggregate_type", "aggregate_id", "aggregate_version", "occurred_at")


@dataclass(frozen=True)
class Envelope:
    event_id: str
    type: str
    version: int
    aggregate_type: str
    aggregate_id: str
    aggregate_version: int
    occurred_at: str
    payload: dict[str, Any]

    @classmethod
    def from_outbox(cls, row) -> Envelope:
        """Build the envelope of a commerce.models.OutboxEvent row."""
        return cls(
            event_id=str(row.event_id),
            type=row.event_type,
            version=row.schema_version,
            aggregate_type=row.aggregate_type,
            aggregate_id=str(row.aggregate_id),
            aggregate_version=row.aggregate_version,
            occurred_at=row.occurred_at.isoformat(),
            payload=row.payload,
        )

    @classmethod
    def from_json(cls, value: bytes | str) -> Envelope:
        """Parse a message value; raises ValueError (or KeyError/TypeError) on a malformed envelope."""
        data = json.loads(value)
        return cls(
            event_id=str(data["event_id"]),
            type=str(data["type"]),
            version=int(data["version"]),
            aggregate_type=str(data["aggregate_type"]),
            aggregate_id=str(data["aggregate_id"]),
            aggregate_version=int(data["aggregate_version"]),
            occurred_at=str(data["occurred_at"]),
            payload=dict(data["payload"]),
        )

    def to_json(self) -> bytes:
        return json.dumps(self.__dict__, separators=(",", ":"), sort_keys=True).encode()

    def headers(self) -> list[tuple[str, bytes]]:
        return [(name, str(getattr(self, name)).encode()) for name in HEADER_FIELDS]

    @property
    def topic(self) -> str:
        return topic_for(self.aggregate_type)

    @property
    def key(self) -> bytes:
        return self.aggregate_id.encode()


def topic_for(aggregate_type: str) -> str:
    """Name the topic of an aggregate type: one topic per type, e.g. commerce.order."""
    return f"{settings.KAFKA_TOPIC_PREFIX}.{aggregate_type}"


def dead_letter_topic(topic: str) -> str:
    return f"{topic}.dlq"

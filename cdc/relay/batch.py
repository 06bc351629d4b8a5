"""The unit of work shared by both relay sources: outbox rows read together and confirmed together."""
from __future__ import annotations

import uuid
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from psycopg import sql

from commerce.models import OutboxEvent


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """The columns of an outbox row that the relay publishes, named as in commerce_outboxevent.

    A plain dataclass rather than an OutboxEvent instance, because building a
    Django model per event costs a large share of the relay's time. It has
    every attribute that `Envelope.from_outbox` reads.
    """

    id: int
    event_id: uuid.UUID
    event_type: str
    schema_version: int
    aggregate_type: str
    aggregate_id: str
    aggregate_version: int
    occurred_at: datetime
    payload: dict[str, Any]


OUTBOX_COLUMNS = tuple(field.name for field in fields(OutboxRow))


@dataclass
class Batch:
    """Outbox rows in publishing order, plus what the source needs to confirm them.

    `position` is the slot LSN to advance to, in logical mode only. A logical
    batch may have a position and no events when it only passed heartbeats
    or transactions without outbox rows.
    """

    events: list[OutboxRow]
    position: int | None = None
    # Commit time of the newest transaction in the batch (logical mode), for lag logging.
    commit_time: datetime | None = None

    @property
    def row_ids(self) -> list[int]:
        return [event.id for event in self.events]


def outbox_table() -> sql.Identifier:
    return sql.Identifier(OutboxEvent._meta.db_table)

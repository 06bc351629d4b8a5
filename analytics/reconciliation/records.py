"""One order as each side of the reconciliation stores it, and the id batches that both sides query by."""
from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

# Ids per `IN (...)` query, so a large day never builds one huge statement.
ID_BATCH_SIZE = 5_000


@dataclass(frozen=True)
class OrderRow:
    """An order as the orders database stores it; `version` is the aggregate version of its latest event."""

    order_id: uuid.UUID
    day: date
    state: str
    version: int
    currency: str
    total: Decimal
    refunded_total: Decimal


@dataclass(frozen=True)
class ProjectedOrder:
    """An order as the projection stores it: the versions applied, and the state and amounts after the newest."""

    order_id: uuid.UUID
    # UTC day of order.placed, or of the oldest applied event when order.placed is missing.
    day: date
    versions: frozenset[int]
    state: str
    currency: str
    total: Decimal
    refunded_total: Decimal

    @property
    def version(self) -> int:
        return max(self.versions)


def batches(order_ids: Iterable[uuid.UUID]) -> Iterator[list[uuid.UUID]]:
    batch: list[uuid.UUID] = []
    for order_id in order_ids:
        batch.append(order_id)
        if len(batch) == ID_BATCH_SIZE:
            yield batch
            batch = []
    if batch:
        yield batch

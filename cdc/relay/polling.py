"""Claim unpublished outbox rows by polling, for PostgreSQL servers without logical replication.

Ids are assigned at insert time but become visible at commit, so a lower id
can appear after a higher one was published. The claim therefore selects every
row still in the table with `published_at IS NULL`, in id order, instead of
following an id cursor.

Per-aggregate order relies on one fact about the writers: every service that
writes an aggregate's event holds a lock on that aggregate until it commits.
The transaction of version n+1 then inserts its row after version n
committed, so n+1 gets the higher id and is never visible without n. Only one
relay runs at a time (the advisory lock in the runner), because two relays
claiming alternate batches could publish n+1 before n.
"""
from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from cdc.relay.batch import OUTBOX_COLUMNS, Batch, OutboxRow, outbox_table


class PollSource:
    """Batches of unpublished outbox rows in id order."""

    name = "poll"

    def __init__(self, connection: psycopg.Connection) -> None:
        self._connection = connection
        columns = sql.SQL(", ").join(sql.Identifier(column) for column in OUTBOX_COLUMNS)
        # The claim's transaction ends before the batch goes to Kafka, so the
        # row locks last only as long as the SELECT. SKIP LOCKED keeps the
        # claim from queueing behind a row that an operator or a crashed
        # relay's session still locks.
        self._claim = sql.SQL(
            "SELECT {columns} FROM {table} WHERE published_at IS NULL ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED"
        ).format(columns=columns, table=outbox_table())
        self._delete = sql.SQL("DELETE FROM {} WHERE id = ANY(%s)").format(outbox_table())

    def prepare(self) -> bool:
        return False

    def fetch(self, limit: int) -> Batch | None:
        with self._connection.transaction():
            rows = self._connection.execute(self._claim, [limit]).fetchall()
        if not rows:
            return None
        return Batch(events=[OutboxRow(*row) for row in rows])

    def complete(self, batch: Batch) -> dict[str, Any]:
        """Delete the published rows right away; a crash before this repeats the batch, never skips it."""
        self._connection.execute(self._delete, [batch.row_ids])
        return {}

    def idle(self) -> None:
        return None

"""Read committed outbox inserts from a logical replication slot through PostgreSQL's SQL slot functions.

The slot uses the pgoutput plugin with a publication that covers only inserts
into the outbox table, so the server filters out every other change. Changes
are peeked, never consumed: the slot moves only when `complete` calls
pg_replication_slot_advance after Kafka acknowledged the batch. A crash
anywhere before that point makes the next peek return the same transactions.

Rows come from the decoded WAL tuples, not from a SELECT by id. A commit is
decodable as soon as its WAL record is flushed, which can be an instant before
the transaction becomes visible to other sessions, so a SELECT could miss a
row that the slot already reported.
"""
from __future__ import annotations

import time
from typing import Any

import psycopg
from psycopg import pq, sql
from psycopg.adapt import Transformer

from cdc.relay import pgoutput
from cdc.relay.batch import OUTBOX_COLUMNS, Batch, OutboxRow, outbox_table
from commerce.logging import get_logger
from commerce.models import OutboxEvent

log = get_logger(__name__)

HEARTBEAT_PREFIX = "cdc_relay_heartbeat"

# upto_nchanges counts output messages (Begin, Relation, Insert, Commit), and
# PostgreSQL checks it only after a whole transaction, so a batch always ends
# on a commit and may exceed the limit by one transaction.
_PEEK = (
    "SELECT data FROM pg_logical_slot_peek_binary_changes("
    "%s, NULL, %s, 'proto_version', '1', 'publication_names', %s, 'messages', 'true')"
)


class RelaySetupError(RuntimeError):
    """The slot or publication exists but cannot serve this relay."""


class LogicalSource:
    """Batches of committed outbox inserts from one replication slot, in commit order."""

    name = "logical"

    def __init__(self, connection: psycopg.Connection, *, slot: str, publication: str, heartbeat_seconds: float) -> None:
        self._connection = connection
        self.slot = slot
        self.publication = publication
        self._heartbeat_seconds = heartbeat_seconds
        self._relations: dict[int, pgoutput.Relation] = {}
        self._decoders: dict[int, _RowDecoder] = {}
        self._confirmed_lsn = 0
        self._last_advance = time.monotonic()

    def prepare(self) -> bool:
        """Create the publication and then the slot when missing; return True while a backfill is due.

        The publication must exist before the slot: pgoutput looks it up as of
        each decoded change, and changes older than the publication fail with
        "publication does not exist".

        Rows committed before the slot was created never appear in it, so a new
        slot needs a backfill. The due backfill is recorded in the
        publication's comment before the slot is created and cleared by
        `backfill_finished`, so a relay that crashes during the backfill runs
        it again on the next start.
        """
        self._ensure_publication()
        row = self._connection.execute(
            "SELECT plugin, database, confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = %s",
            [self.slot],
        ).fetchone()
        if row is not None:
            plugin, database, confirmed = row
            current_database = self._connection.execute("SELECT current_database()").fetchone()[0]
            if plugin != "pgoutput" or database != current_database:
                raise RelaySetupError(
                    f"Replication slot {self.slot!r} uses plugin {plugin!r} in database {database!r}; "
                    f"the relay needs a pgoutput slot in {current_database!r}. Drop it or pass another --slot."
                )
            self._confirmed_lsn = pgoutput.parse_lsn(confirmed)
            return self._backfill_marker() == self._backfill_pending_marker

        self._set_backfill_marker(self._backfill_pending_marker)
        # Creating a logical slot waits until every transaction running in the
        # cluster at that moment has finished.
        (lsn,) = self._connection.execute(
            "SELECT lsn::text FROM pg_create_logical_replication_slot(%s, 'pgoutput')", [self.slot]
        ).fetchone()
        self._confirmed_lsn = pgoutput.parse_lsn(lsn)
        log.info("relay_slot_created", slot=self.slot, lsn=lsn)
        return True

    @property
    def _backfill_pending_marker(self) -> str:
        return f"cdc relay: backfill pending for slot {self.slot}"

    def _backfill_marker(self) -> str | None:
        row = self._connection.execute(
            "SELECT obj_description(oid, 'pg_publication') FROM pg_publication WHERE pubname = %s", [self.publication]
        ).fetchone()
        return row[0] if row else None

    def _set_backfill_marker(self, text: str | None) -> None:
        self._connection.execute(
            sql.SQL("COMMENT ON PUBLICATION {} IS {}").format(
                sql.Identifier(self.publication), sql.Literal(text) if text is not None else sql.SQL("NULL")
            )
        )

    def backfill_finished(self) -> None:
        """Record that every row older than the slot was published."""
        self._set_backfill_marker(None)

    def _ensure_publication(self) -> None:
        table = OutboxEvent._meta.db_table
        exists = self._connection.execute("SELECT 1 FROM pg_publication WHERE pubname = %s", [self.publication]).fetchone()
        if exists is None:
            # Only the table owner may add a table to a publication; the relay's
            # role owns the outbox because it runs the migrations.
            self._connection.execute(
                sql.SQL("CREATE PUBLICATION {} FOR TABLE {} WITH (publish = 'insert')").format(
                    sql.Identifier(self.publication), outbox_table()
                )
            )
            log.info("relay_publication_created", publication=self.publication, table=table)
            return
        covers_outbox = self._connection.execute(
            "SELECT 1 FROM pg_publication_tables WHERE pubname = %s AND tablename = %s", [self.publication, table]
        ).fetchone()
        if covers_outbox is None:
            raise RelaySetupError(
                f"Publication {self.publication!r} does not include table {table!r}; "
                f"run ALTER PUBLICATION {self.publication} ADD TABLE {table} or pass another --publication."
            )

    def fetch(self, limit: int) -> Batch | None:
        """Peek at about `limit` messages; return the complete transactions among them, or None when the slot has none."""
        rows = self._connection.execute(_PEEK, [self.slot, limit, self.publication]).fetchall()
        events: list[OutboxRow] = []
        pending: list[OutboxRow] = []
        batch: Batch | None = None
        for (data,) in rows:
            message = pgoutput.parse_message(data)
            if isinstance(message, pgoutput.Relation):
                # pgoutput repeats the Relation message in every peek; keep
                # the decoder unless the table's columns changed.
                if self._relations.get(message.relation_id) != message:
                    self._relations[message.relation_id] = message
                    self._decoders.pop(message.relation_id, None)
            elif isinstance(message, pgoutput.Insert):
                event = self._decode_insert(message)
                if event is not None:
                    pending.append(event)
            elif isinstance(message, pgoutput.Commit):
                # Events count only once their commit is in hand, so a batch
                # never confirms part of a transaction.
                events.extend(pending)
                pending = []
                batch = Batch(events=events, position=message.end_lsn, commit_time=message.commit_time)
        return batch

    def _decode_insert(self, message: pgoutput.Insert) -> OutboxRow | None:
        decoder = self._decoders.get(message.relation_id)
        if decoder is None:
            relation = self._relations.get(message.relation_id)
            if relation is None:
                raise pgoutput.DecodingError(
                    f"Insert into relation {message.relation_id} arrived before its Relation message."
                )
            if relation.name != OutboxEvent._meta.db_table:
                return None
            decoder = self._decoders[message.relation_id] = _RowDecoder(relation, self._connection)
        return decoder.decode(message.values)

    def complete(self, batch: Batch) -> dict[str, Any]:
        """Delete the batch's rows, then advance the slot past it; return the slot position and lag.

        Deleting first means a crash in between repeats the batch from the
        slot (the decoded tuples carry every column) instead of leaving
        published rows behind for ever.
        """
        if batch.events:
            self._connection.execute(
                sql.SQL("DELETE FROM {} WHERE id = ANY(%s)").format(outbox_table()), [batch.row_ids]
            )
        if batch.position is None or batch.position <= self._confirmed_lsn:
            return {"lsn": pgoutput.format_lsn(self._confirmed_lsn)}
        end_lsn, lag_bytes = self._connection.execute(
            "SELECT end_lsn::text, pg_wal_lsn_diff(pg_current_wal_lsn(), end_lsn)::bigint "
            "FROM pg_replication_slot_advance(%s, %s::pg_lsn)",
            [self.slot, pgoutput.format_lsn(batch.position)],
        ).fetchone()
        self._confirmed_lsn = pgoutput.parse_lsn(end_lsn)
        self._last_advance = time.monotonic()
        return {"lsn": end_lsn, "lag_bytes": lag_bytes}

    def idle(self) -> None:
        """Write a heartbeat when the slot has not moved for a while but WAL has.

        Without outbox inserts the peek returns nothing and the slot would
        retain all WAL written since. The heartbeat is a transactional logical
        message, so the next peek returns a commit that the slot can advance
        to. Advancing to a bare WAL position instead could skip a transaction
        whose commit record straddles it.
        """
        if time.monotonic() - self._last_advance < self._heartbeat_seconds:
            return
        self._last_advance = time.monotonic()
        row = self._connection.execute(
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint "
            "FROM pg_replication_slots WHERE slot_name = %s",
            [self.slot],
        ).fetchone()
        if row is not None and row[0] > 0:
            self._connection.execute("SELECT pg_logical_emit_message(true, %s, '')", [HEARTBEAT_PREFIX])


class _RowDecoder:
    """Turn the text values of an outbox insert into an OutboxRow with psycopg's loaders for the column types.

    Columns the relay does not publish (published_at, or any added later)
    are skipped, so a migration that adds a column does not stop the relay.
    """

    def __init__(self, relation: pgoutput.Relation, connection: psycopg.Connection) -> None:
        names = [column.name for column in relation.columns]
        missing = [column for column in OUTBOX_COLUMNS if column not in names]
        if missing:
            raise pgoutput.DecodingError(f"Table {relation.name} has no column {', '.join(missing)}.")
        self._positions = [names.index(column) for column in OUTBOX_COLUMNS]
        # The same loaders that a SELECT on this connection would use, with
        # the session time zone UTC, so both modes build identical envelopes.
        self._transformer = Transformer(connection)
        self._transformer.set_loader_types(
            [relation.columns[position].type_oid for position in self._positions], pq.Format.TEXT
        )

    def decode(self, values: tuple[bytes | None, ...]) -> OutboxRow:
        return OutboxRow(*self._transformer.load_sequence([values[position] for position in self._positions]))


def drop_slot(connection: psycopg.Connection, slot: str) -> bool:
    """Drop the replication slot `slot` if it exists; return whether it existed.

    A slot that no relay reads retains WAL without limit, so a decommissioned
    relay must drop its slot.
    """
    row = connection.execute(
        "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = %s", [slot]
    ).fetchone()
    return row is not None


def drop_publication(connection: psycopg.Connection, publication: str) -> None:
    connection.execute(sql.SQL("DROP PUBLICATION IF EXISTS {}").format(sql.Identifier(publication)))

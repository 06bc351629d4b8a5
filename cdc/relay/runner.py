"""The relay loop: fetch a batch, publish it, wait for every acknowledgement, then confirm it at the source.

Confirming (advancing the slot, deleting the rows) happens only after Kafka
acknowledged the whole batch, and no transaction or row lock is open while the
relay waits for Kafka. A crash or an outage therefore repeats events rather
than dropping them, and checkout does not wait for the relay.
"""
from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import psycopg

from cdc.relay import database, pgoutput
from cdc.relay.batch import Batch
from cdc.relay.config import RelayConfig, logical_lock_name, poll_lock_name
from cdc.relay.logical import LogicalSource, RelaySetupError
from cdc.relay.polling import PollSource
from cdc.relay.publisher import DeliveryFailed, KafkaPublisher
from commerce.logging import get_logger

log = get_logger(__name__)

_LOCK_WAIT_LOG_INTERVAL_SECONDS = 60.0
_LOCK_RETRY_SECONDS = 2.0


class RelayFailed(RuntimeError):
    """A `once` run stopped at a failed batch; nothing of that batch was confirmed."""


class Source(Protocol):
    name: str

    def prepare(self) -> bool: ...

    def fetch(self, limit: int) -> Batch | None: ...

    def complete(self, batch: Batch) -> dict[str, Any]: ...

    def idle(self) -> None: ...


@dataclass
class RelayStats:
    batches: int = 0
    published: int = 0
    failed_batches: int = 0


class Relay:
    """One relay process: a source, a publisher and the loop between them.

    Only one relay per slot (logical mode) or per database (poll mode) works
    at a time: each holds a session advisory lock, and a second one waits as a
    standby until the first exits.
    """

    def __init__(self, config: RelayConfig, *, stop_event: threading.Event | None = None) -> None:
        self.config = config
        self.stop_event = stop_event or threading.Event()
        self.stats = RelayStats()
        self._publisher = KafkaPublisher(stop_event=self.stop_event, stop_timeout_seconds=config.stop_timeout_seconds)
        self._connection: psycopg.Connection | None = None
        self._source: Source | None = None
        self._failures_in_a_row = 0

    @property
    def lock_name(self) -> str:
        return logical_lock_name(self.config.slot) if self.config.mode == "logical" else poll_lock_name()

    def run(self, *, once: bool = False) -> RelayStats:
        """Relay until the stop event is set or, with `once`, until the source is drained.

        Raises RelayFailed when a `once` run meets a failed batch, and
        RelaySetupError when the slot or publication cannot serve this relay.
        """
        log.info(
            "relay_started",
            mode=self.config.mode,
            slot=self.config.slot if self.config.mode == "logical" else None,
            batch_size=self.config.batch_size,
            once=once,
        )
        try:
            self._loop(once=once)
        finally:
            self._publisher.close()
            self._close_connection()
            log.info(
                "relay_stopped",
                mode=self.config.mode,
                batches=self.stats.batches,
                published=self.stats.published,
                failed_batches=self.stats.failed_batches,
            )
        return self.stats

    def _loop(self, *, once: bool) -> None:
        while not self.stop_event.is_set():
            try:
                if self._source is None and not self._start_source():
                    continue
                batch = self._source.fetch(self.config.batch_size)
                if batch is not None:
                    self._relay_batch(self._source, batch)
                    self._failures_in_a_row = 0
                    continue
                if once:
                    return
                self._source.idle()
                self.stop_event.wait(self.config.idle_seconds)
            except RelaySetupError:
                raise
            except DeliveryFailed as exc:
                self._publisher.reset()
                self._record_failure("relay_batch_failed", exc, once=once)
            except (psycopg.Error, pgoutput.DecodingError) as exc:
                # The session and its advisory lock may be gone; start over
                # with a new connection, which takes the lock again.
                self._close_connection()
                self._record_failure("relay_database_error", exc, once=once)

    def _start_source(self) -> bool:
        connection = database.connect(application_name=f"cdc-relay-{self.config.mode}")
        try:
            if not self._wait_for_lock(connection):
                connection.close()
                return False
            if self.config.mode == "logical":
                source: Source = LogicalSource(
                    connection,
                    slot=self.config.slot,
                    publication=self.config.publication,
                    heartbeat_seconds=self.config.heartbeat_seconds,
                )
            else:
                source = PollSource(connection)
            if source.prepare() and not self._backfill(connection, source):
                # Stopped during the backfill; the pending marker repeats it on the next start.
                connection.close()
                return False
        except BaseException:
            connection.close()
            raise
        self._connection, self._source = connection, source
        return True

    def _wait_for_lock(self, connection: psycopg.Connection) -> bool:
        next_log = time.monotonic()
        while not database.try_advisory_lock(connection, self.lock_name):
            if time.monotonic() >= next_log:
                log.info("relay_waiting_for_lock", lock=self.lock_name)
                next_log = time.monotonic() + _LOCK_WAIT_LOG_INTERVAL_SECONDS
            if self.stop_event.wait(_LOCK_RETRY_SECONDS):
                return False
        return True

    def _backfill(self, connection: psycopg.Connection, source: LogicalSource) -> bool:
        """Publish the rows committed before the slot existed, which the slot will never return.

        Return False when a stop request ended the backfill early. Rows
        committed after the slot's start point are in the slot as well and
        get published twice, and consumers deduplicate them by event id.
        """
        poll = PollSource(connection)
        published = 0
        while not self.stop_event.is_set():
            batch = poll.fetch(self.config.batch_size)
            if batch is None:
                source.backfill_finished()
                log.info("relay_backfill_finished", slot=self.config.slot, published=published)
                return True
            self._relay_batch(poll, batch)
            published += len(batch.events)
        return False

    def _relay_batch(self, source: Source, batch: Batch) -> None:
        if batch.events:
            self._publisher.publish(batch.events)
        position = source.complete(batch)
        self.stats.batches += 1
        self.stats.published += len(batch.events)
        # A logical batch without events only moved the slot past heartbeats.
        if batch.events:
            log.info(
                "relay_batch_published",
                source=source.name,
                batch_size=len(batch.events),
                lag_seconds=_lag_seconds(batch),
                **position,
            )

    def _record_failure(self, event: str, exc: Exception, *, once: bool) -> None:
        self.stats.failed_batches += 1
        self._failures_in_a_row += 1
        log.error(event, error=str(exc), error_type=type(exc).__name__, failures_in_a_row=self._failures_in_a_row)
        if once:
            raise RelayFailed(f"Relay batch failed: {exc}") from exc
        delay = min(
            self.config.backoff_max_seconds,
            self.config.backoff_initial_seconds * 2 ** (self._failures_in_a_row - 1),
        )
        # Jitter keeps a fleet of restarted relays from retrying in step.
        self.stop_event.wait(delay * random.uniform(0.5, 1.0))

    def _close_connection(self) -> None:
        if self._connection is not None:
            self._connection.close()
        self._connection, self._source = None, None


def _lag_seconds(batch: Batch) -> float | None:
    """Return the age of the batch at publish time: since its newest commit (logical) or its oldest event (poll)."""
    if batch.commit_time is not None:
        reference = batch.commit_time
    elif batch.events:
        reference = min(event.occurred_at for event in batch.events)
    else:
        return None
    return round((datetime.now(UTC) - reference).total_seconds(), 3)

"""Collect how far behind the relay and the consumers are, for `cdc_status` and /readyz.

Each section is collected on its own, so one unreachable service leaves an
"error" in its section and the others still report.
"""
from __future__ import annotations

from typing import Any

import psycopg
from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec
from django.conf import settings
from psycopg import sql

from cdc.relay import database
from cdc.relay.batch import outbox_table
from cdc.relay.config import logical_lock_name, poll_lock_name


def collect_status(*, slot: str, timeout: float = 5.0) -> dict[str, Any]:
    """Return the relay, slot, outbox and consumer group sections; a section that failed contains {"error": ...}."""
    status: dict[str, Any] = {}
    try:
        with database.connect(application_name="cdc-status", statement_timeout_ms=int(timeout * 1000)) as connection:
            status["relay"] = relay_status(connection, slot)
            status["slot"] = slot_status(connection, slot)
            status["outbox"] = outbox_status(connection)
    except psycopg.Error as exc:
        status.setdefault("relay", {"error": _describe(exc)})
        status.setdefault("slot", {"name": slot, "error": _describe(exc)})
        status.setdefault("outbox", {"error": _describe(exc)})
    try:
        status["consumer_groups"] = consumer_group_lag(prefix=settings.KAFKA_TOPIC_PREFIX, timeout=timeout)
    except (KafkaException, TimeoutError) as exc:
        status["consumer_groups"] = {"error": _describe(exc)}
    return status


def relay_status(connection: psycopg.Connection, slot: str) -> dict[str, Any]:
    """Tell which relay runs: the mode and backend pid of the session holding a relay lock, or mode None."""
    for mode, lock_name in (("logical", logical_lock_name(slot)), ("poll", poll_lock_name())):
        pid = database.advisory_lock_holder(connection, lock_name)
        if pid is not None:
            return {"mode": mode, "backend_pid": pid}
    return {"mode": None, "backend_pid": None}


def slot_status(connection: psycopg.Connection, slot: str) -> dict[str, Any]:
    """Describe the replication slot: whether a session reads it, and its lag and retained WAL in bytes.

    lag_bytes counts all WAL written since the relay's last confirmed
    position, by every database of the server and not only by outbox inserts,
    so it is rarely zero on a busy server. The relay's heartbeat keeps it
    bounded while no outbox row is written.
    """
    row = connection.execute(
        "SELECT active, pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint, "
        "pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint, confirmed_flush_lsn::text "
        "FROM pg_replication_slots WHERE slot_name = %s",
        [slot],
    ).fetchone()
    if row is None:
        return {"name": slot, "exists": False}
    active, lag_bytes, retained_bytes, confirmed = row
    return {
        "name": slot,
        "exists": True,
        "active": active,
        "confirmed_flush_lsn": confirmed,
        "lag_bytes": lag_bytes,
        "retained_wal_bytes": retained_bytes,
    }


def outbox_status(connection: psycopg.Connection) -> dict[str, Any]:
    """Count unpublished outbox rows and the age in seconds of the oldest one (None when there is none)."""
    backlog, oldest_age = connection.execute(
        sql.SQL(
            "SELECT count(*), EXTRACT(EPOCH FROM now() - min(occurred_at))::float8 FROM {} WHERE published_at IS NULL"
        ).format(outbox_table())
    ).fetchone()
    return {
        "backlog": backlog,
        "oldest_unpublished_age_seconds": round(oldest_age, 3) if oldest_age is not None else None,
    }


def consumer_group_lag(*, prefix: str, timeout: float) -> dict[str, Any]:
    """Return the lag of every consumer group named `<prefix>.<consumer name>`, found with ListGroups.

    Lag is the high watermark minus the committed offset, summed over the
    partitions the group has committed. A partition without a committed
    offset is left out, because the group's reset policy decides where it
    starts.
    """
    admin = AdminClient(
        {
            "bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS,
            "socket.connection.setup.timeout.ms": int(timeout * 1000),
            # librdkafka logs every refused connection; the section reports it instead.
            "log_level": 0,
        }
    )
    listing = admin.list_consumer_groups(request_timeout=timeout).result(timeout=timeout + 1)
    if listing.errors:
        # An unreachable broker shows up here rather than as an exception.
        raise KafkaException(listing.errors[0])
    group_ids = sorted(group.group_id for group in listing.valid if group.group_id.startswith(prefix + "."))
    states = {group.group_id: group.state.name.lower() for group in listing.valid}

    groups: dict[str, Any] = {}
    for group_id in group_ids:
        futures = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group_id)], request_timeout=timeout)
        committed = [
            partition
            for partition in futures[group_id].result(timeout=timeout + 1).topic_partitions
            if partition.offset >= 0
        ]
        partitions = []
        if committed:
            ends = admin.list_offsets(
                {TopicPartition(item.topic, item.partition): OffsetSpec.latest() for item in committed},
                request_timeout=timeout,
            )
            end_offsets = {(key.topic, key.partition): future.result(timeout=timeout + 1).offset for key, future in ends.items()}
            for item in sorted(committed, key=lambda part: (part.topic, part.partition)):
                end = end_offsets[(item.topic, item.partition)]
                partitions.append(
                    {
                        "topic": item.topic,
                        "partition": item.partition,
                        "committed": item.offset,
                        "end": end,
                        "lag": max(0, end - item.offset),
                    }
                )
        groups[group_id] = {
            "state": states.get(group_id),
            "lag": sum(partition["lag"] for partition in partitions),
            "partitions": partitions,
        }
    return {"prefix": prefix, "groups": groups}


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]

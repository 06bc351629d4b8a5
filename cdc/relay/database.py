"""The relay's own PostgreSQL connection and its leadership lock.

The relay does not use Django's connection: it needs autocommit, a session
that lives as long as its advisory lock, and psycopg's plain type loaders,
which it also uses to decode pgoutput tuples.
"""
from __future__ import annotations

import hashlib

import psycopg
from django.db import connections


def connect(*, application_name: str, statement_timeout_ms: int | None = None) -> psycopg.Connection:
    """Open an autocommit connection to the database of Django's `default` alias, with the session time zone UTC."""
    params = connections["default"].settings_dict
    options = "-c TimeZone=UTC"
    if statement_timeout_ms is not None:
        options += f" -c statement_timeout={int(statement_timeout_ms)}"
    return psycopg.connect(
        host=params["HOST"] or None,
        port=params["PORT"] or None,
        dbname=params["NAME"],
        user=params["USER"] or None,
        password=params["PASSWORD"] or None,
        connect_timeout=params.get("OPTIONS", {}).get("connect_timeout", 5),
        application_name=application_name,
        options=options,
        autocommit=True,
    )


def advisory_lock_key(name: str) -> int:
    """Map a lock name to the signed 64-bit key that pg_try_advisory_lock takes."""
    digest = hashlib.sha256(name.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def try_advisory_lock(connection: psycopg.Connection, name: str) -> bool:
    """Take the session-level advisory lock `name` if it is free; it lasts until the connection closes."""
    row = connection.execute("SELECT pg_try_advisory_lock(%s)", [advisory_lock_key(name)]).fetchone()
    return bool(row and row[0])


def advisory_lock_holder(connection: psycopg.Connection, name: str) -> int | None:
    """Return the backend pid holding the session advisory lock `name` in this database, or None."""
    # pg_locks shows a bigint key as two unsigned 32-bit halves, with objsubid 1.
    unsigned = advisory_lock_key(name) & 0xFFFFFFFFFFFFFFFF
    row = connection.execute(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1 "
        "AND classid = %s::bigint::oid AND objid = %s::bigint::oid "
        "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        [unsigned >> 32, unsigned & 0xFFFFFFFF],
    ).fetchone()
    return row[0] if row else None

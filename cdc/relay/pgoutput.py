"""Parse the messages of PostgreSQL's pgoutput plugin, protocol version 1.

Only what the relay reads is parsed: Begin, Commit, Relation, Insert and
logical decoding messages. Other message kinds parse to None. The format is
described in the PostgreSQL manual, chapter "Logical Replication Message
Formats" (the same for PostgreSQL 14 to 17 at protocol version 1).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

# pgoutput timestamps count microseconds from the PostgreSQL epoch.
POSTGRES_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


class DecodingError(ValueError):
    """A pgoutput message did not have the expected layout."""


@dataclass(frozen=True)
class Begin:
    final_lsn: int
    commit_time: datetime
    xid: int


@dataclass(frozen=True)
class Commit:
    commit_lsn: int
    # The end of the commit record: the slot position that confirms this transaction.
    end_lsn: int
    commit_time: datetime


@dataclass(frozen=True)
class Column:
    name: str
    type_oid: int


@dataclass(frozen=True)
class Relation:
    relation_id: int
    namespace: str
    name: str
    columns: tuple[Column, ...]


@dataclass(frozen=True)
class Insert:
    relation_id: int
    # Text-format column values in the relation's column order; None is SQL NULL.
    values: tuple[bytes | None, ...]


@dataclass(frozen=True)
class LogicalMessage:
    transactional: bool
    lsn: int
    prefix: str
    content: bytes


Message = Begin | Commit | Relation | Insert | LogicalMessage


class _Reader:
    def __init__(self, data: bytes) -> None:
        self._data = data
        self._offset = 0

    def unpack(self, fmt: str) -> int:
        size = struct.calcsize(fmt)
        if self._offset + size > len(self._data):
            raise DecodingError(f"Message ends at byte {len(self._data)}, expected {size} more bytes at {self._offset}.")
        (value,) = struct.unpack_from(fmt, self._data, self._offset)
        self._offset += size
        return value

    def take(self, size: int) -> bytes:
        if size < 0 or self._offset + size > len(self._data):
            raise DecodingError(f"Message ends at byte {len(self._data)}, expected {size} more bytes at {self._offset}.")
        value = self._data[self._offset : self._offset + size]
        self._offset += size
        return value

    def string(self) -> str:
        end = self._data.find(b"\x00", self._offset)
        if end < 0:
            raise DecodingError(f"Unterminated string at byte {self._offset}.")
        value = self._data[self._offset : end].decode()
        self._offset = end + 1
        return value

    def timestamp(self) -> datetime:
        return POSTGRES_EPOCH + timedelta(microseconds=self.unpack("!q"))


def parse_message(data: bytes) -> Message | None:
    """Parse one pgoutput message; return None for kinds the relay ignores (Type, Origin, Update, Delete, ...)."""
    if not data:
        raise DecodingError("Empty pgoutput message.")
    reader = _Reader(bytes(data))
    kind = reader.take(1)

    if kind == b"B":
        return Begin(final_lsn=reader.unpack("!Q"), commit_time=reader.timestamp(), xid=reader.unpack("!I"))
    if kind == b"C":
        reader.unpack("!B")  # Flags, unused in protocol version 1.
        return Commit(commit_lsn=reader.unpack("!Q"), end_lsn=reader.unpack("!Q"), commit_time=reader.timestamp())
    if kind == b"R":
        return _parse_relation(reader)
    if kind == b"I":
        return _parse_insert(bytes(data))
    if kind == b"M":
        flags = reader.unpack("!B")
        lsn = reader.unpack("!Q")
        prefix = reader.string()
        content = reader.take(reader.unpack("!I"))
        return LogicalMessage(transactional=bool(flags & 1), lsn=lsn, prefix=prefix, content=content)
    return None


def _parse_relation(reader: _Reader) -> Relation:
    relation_id = reader.unpack("!I")
    namespace = reader.string()
    name = reader.string()
    reader.unpack("!B")  # Replica identity setting.
    columns = []
    for _ in range(reader.unpack("!H")):
        reader.unpack("!B")  # Flags: 1 marks a key column.
        column_name = reader.string()
        type_oid = reader.unpack("!I")
        reader.unpack("!i")  # Type modifier.
        columns.append(Column(name=column_name, type_oid=type_oid))
    return Relation(relation_id=relation_id, namespace=namespace, name=name, columns=tuple(columns))


_INSERT_HEADER = struct.Struct("!IcH")  # Relation id, tuple marker 'N', column count.
_LENGTH = struct.Struct("!I")


def _parse_insert(data: bytes) -> Insert:
    # Inserts are nearly every message the relay reads, so this path works on
    # the buffer directly instead of going through _Reader.
    if len(data) < 1 + _INSERT_HEADER.size:
        raise DecodingError(f"Insert message of {len(data)} bytes is too short.")
    relation_id, marker, count = _INSERT_HEADER.unpack_from(data, 1)
    if marker != b"N":
        raise DecodingError(f"Insert message has tuple marker {marker!r}, expected b'N'.")
    offset = 1 + _INSERT_HEADER.size
    end = len(data)
    values: list[bytes | None] = []
    for _ in range(count):
        if offset >= end:
            raise DecodingError(f"Insert message ends after {len(values)} of {count} columns.")
        kind = data[offset]
        offset += 1
        if kind == 0x74:  # 't': text value with a length prefix.
            if offset + 4 > end:
                raise DecodingError(f"Insert message ends inside the length of column {len(values) + 1}.")
            (length,) = _LENGTH.unpack_from(data, offset)
            offset += 4
            if offset + length > end:
                raise DecodingError(f"Insert message ends inside the value of column {len(values) + 1}.")
            values.append(data[offset : offset + length])
            offset += length
        elif kind == 0x6E:  # 'n': NULL.
            values.append(None)
        else:
            # 'u' (unchanged TOAST value) occurs only in updates and 'b' only
            # with the binary option; an insert decoded as text has neither.
            raise DecodingError(f"Unexpected tuple column kind {chr(kind)!r} in an insert.")
    return Insert(relation_id=relation_id, values=tuple(values))


def format_lsn(lsn: int) -> str:
    """Format an LSN the way PostgreSQL prints pg_lsn, e.g. 0/16B3748."""
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def parse_lsn(text: str) -> int:
    """Parse PostgreSQL's pg_lsn text form (high/low hexadecimal halves) into an integer."""
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) | int(low, 16)

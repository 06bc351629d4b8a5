"""The pgoutput parser, the relay settings and the row type, without a database."""
from __future__ import annotations

import struct
from datetime import UTC, datetime

import pytest

from cdc.relay import pgoutput
from cdc.relay.batch import OUTBOX_COLUMNS
from cdc.relay.config import RelayConfig
from commerce.models import OutboxEvent

COMMIT_MICROSECONDS = 123_456_789
COMMIT_TIME = datetime(2000, 1, 1, 0, 2, 3, 456_789, tzinfo=UTC)


def c_string(text: str) -> bytes:
    return text.encode() + b"\x00"


def test_parse_begin():
    message = pgoutput.parse_message(b"B" + struct.pack("!QqI", 0x1_0000_0010, COMMIT_MICROSECONDS, 745))

    assert message == pgoutput.Begin(final_lsn=0x1_0000_0010, commit_time=COMMIT_TIME, xid=745)


def test_parse_commit():
    message = pgoutput.parse_message(b"C" + struct.pack("!BQQq", 0, 0x500, 0x530, COMMIT_MICROSECONDS))

    assert message == pgoutput.Commit(commit_lsn=0x500, end_lsn=0x530, commit_time=COMMIT_TIME)


def test_parse_relation_and_insert():
    relation_bytes = (
        b"R"
        + struct.pack("!I", 16_400)
        + c_string("public")
        + c_string("commerce_outboxevent")
        + struct.pack("!BH", ord("d"), 2)
        + struct.pack("!B", 1) + c_string("id") + struct.pack("!Ii", 20, -1)
        + struct.pack("!B", 0) + c_string("published_at") + struct.pack("!Ii", 1184, -1)
    )
    insert_bytes = b"I" + struct.pack("!I", 16_400) + b"N" + struct.pack("!H", 2) + b"t" + struct.pack("!I", 2) + b"42" + b"n"

    relation = pgoutput.parse_message(relation_bytes)
    insert = pgoutput.parse_message(insert_bytes)

    assert relation == pgoutput.Relation(
        relation_id=16_400,
        namespace="public",
        name="commerce_outboxevent",
        columns=(pgoutput.Column("id", 20), pgoutput.Column("published_at", 1184)),
    )
    assert insert == pgoutput.Insert(relation_id=16_400, values=(b"42", None))


def test_parse_logical_message():
    data = b"M" + struct.pack("!BQ", 1, 0x900) + c_string("cdc_relay_heartbeat") + struct.pack("!I", 2) + b"hi"

    assert pgoutput.parse_message(data) == pgoutput.LogicalMessage(
        transactional=True, lsn=0x900, prefix="cdc_relay_heartbeat", content=b"hi"
    )


def test_ignored_kinds_parse_to_none():
    # An Origin message: kinds the relay does not use are skipped, not rejected.
    assert pgoutput.parse_message(b"O" + struct.pack("!Q", 1) + c_string("origin")) is None


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"", "Empty"),
        (b"C" + struct.pack("!BQ", 0, 1), "expected 8 more bytes"),
        (b"I" + struct.pack("!I", 1) + b"K" + struct.pack("!H", 0), "tuple marker"),
        (b"I" + struct.pack("!I", 1) + b"N", "too short"),
        (b"I" + struct.pack("!IcH", 1, b"N", 2) + b"n", "after 1 of 2 columns"),
        (b"I" + struct.pack("!IcH", 1, b"N", 1) + b"t" + struct.pack("!I", 5) + b"abc", "inside the value of column 1"),
        (b"I" + struct.pack("!I", 1) + b"N" + struct.pack("!H", 1) + b"u", "Unexpected tuple column kind"),
        (b"R" + struct.pack("!I", 1) + b"public", "Unterminated string"),
    ],
)
def test_malformed_messages_rejected(data, error):
    with pytest.raises(pgoutput.DecodingError, match=error):
        pgoutput.parse_message(data)


@pytest.mark.parametrize("text", ["0/0", "0/16B3748", "1/0", "FFFFFFFF/FFFFFFFF"])
def test_lsn_round_trip(text):
    assert pgoutput.format_lsn(pgoutput.parse_lsn(text)) == text


def test_parse_lsn_orders_like_postgres():
    assert pgoutput.parse_lsn("1/0") > pgoutput.parse_lsn("0/FFFFFFFF")


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"mode": "stream"}, "Invalid relay mode"),
        ({"slot": "Outbox-Slot"}, "Invalid slot name"),
        ({"publication": "x" * 64}, "Invalid publication name"),
        ({"batch_size": 0}, "Invalid batch size"),
    ],
)
def test_config_rejects_invalid_values(overrides, error):
    with pytest.raises(ValueError, match=error):
        RelayConfig.from_settings(**overrides)


def test_config_reads_settings(settings):
    settings.CDC_RELAY_SLOT = "from_settings"
    settings.CDC_RELAY_BATCH_SIZE = 7

    config = RelayConfig.from_settings(batch_size=None, mode="poll")

    assert (config.slot, config.batch_size, config.mode) == ("from_settings", 7, "poll")


def test_outbox_row_matches_model_columns():
    columns = {field.column for field in OutboxEvent._meta.concrete_fields}

    assert set(OUTBOX_COLUMNS) <= columns

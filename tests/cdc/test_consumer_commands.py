"""The consumer management commands: run_consumer as a process, replay --from-timestamp and replay_dlq."""
from __future__ import annotations

import io
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from cdc.consumers.audit import AuditConsumer
from cdc.consumers.notifications import NotificationsConsumer
from cdc.envelope import dead_letter_topic, topic_for
from cdc.management.commands.replay import parse_timestamp
from cdc.models import AuditEntry, Notification, ProcessedEvent
from tests.services import REPO



def call(command: str, *args: str) -> str:
    output = io.StringIO()
    call_command(command, *args, stdout=output)
    return output.getvalue().strip()


def audit_snapshot() -> list[tuple]:
    rows = AuditEntry.objects.order_by("id").values_list("id", "event_id", "aggregate_version", "offset", "recorded_at")
    return list(rows)


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def test_parse_timestamp_formats():
    assert parse_timestamp("2025-01-31T09:00:00Z") == 1_738_314_000_000
    assert parse_timestamp("2025-01-31T10:00:00+01:00") == 1_738_314_000_000
    assert parse_timestamp("1738314000000") == 1_738_314_000_000


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2025-01-31T09:00:00", "no UTC offset"),
        ("1738314000", "looks like epoch seconds"),
        ("last tuesday", "invalid time"),
    ],
)
def test_replay_rejects_bad_timestamp(value, message):
    with pytest.raises(CommandError, match=message):
        call_command("replay", "audit", "--from-timestamp", value)


def test_unknown_consumer_name_rejected():
    with pytest.raises(CommandError, match="Unknown consumer 'mailer'. Registered consumers: analytics, audit, notifications, search-indexer."):
        call_command("run_consumer", "mailer")


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("fast_consumers")
def test_run_consumer_stops_on_sigterm(kafka_topic_prefix, kafka_producer, make_envelope, kafka_inspector):
    settings_dict = connection.settings_dict
    database_url = (
        f"postgres://{settings_dict['USER']}:{settings_dict['PASSWORD']}@{settings_dict['HOST']}:{settings_dict['PORT']}"
        f"/{settings_dict['NAME']}"
    )
    env = {**os.environ, "DATABASE_URL": database_url, "KAFKA_TOPIC_PREFIX": kafka_topic_prefix, "LOG_FORMAT": "json"}
    process = subprocess.Popen(
        [sys.executable, "manage.py", "run_consumer", "audit"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    log_lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [log_lines.put(line) for line in process.stderr], daemon=True).start()

    def wait_for_log(event: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if f'"event": "{event}"' in log_lines.get(timeout=0.5):
                    return
            except queue.Empty:
                assert process.poll() is None, f"run_consumer exited early with status {process.returncode}"
        pytest.fail(f"run_consumer did not log {event} within {timeout} s")

    try:
        wait_for_log("consumer_partitions_assigned")
        envelope = make_envelope("order.placed")
        kafka_producer.send_envelope(envelope)
        deadline = time.monotonic() + 20
        while not AuditEntry.objects.filter(event_id=envelope.event_id).exists() and time.monotonic() < deadline:
            time.sleep(0.1)

        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        stdout = process.stdout.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    assert process.returncode == 0
    assert stdout.strip() == "audit: 1 message(s): 1 applied"
    assert AuditEntry.objects.filter(event_id=envelope.event_id).count() == 1
    wait_for_log("consumer_stopped", timeout=1)
    topic = topic_for("order")
    assert kafka_inspector.committed_to_end(AuditConsumer().group_id(), topic)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("fast_consumers")
def test_replay_from_timestamp_twice_changes_nothing(kafka_producer, make_envelope, kafka_inspector):
    now = datetime.now(UTC)
    old = [make_envelope("order.placed") for _ in range(2)]
    recent = [make_envelope("order.placed") for _ in range(3)]
    for envelope in old:
        kafka_producer.send_envelope(envelope, timestamp_ms=epoch_ms(now - timedelta(minutes=10)))
    for envelope in recent:
        kafka_producer.send_envelope(envelope, timestamp_ms=epoch_ms(now - timedelta(minutes=1)))
    call("run_consumer", "audit", "--idle-timeout", "2")
    topic = topic_for("order")
    live_offsets = kafka_inspector.committed_offsets(AuditConsumer().group_id(), topic)
    # The audit table lost the recent events, as after a restore from a backup taken before them.
    lost = [envelope.event_id for envelope in recent]
    AuditEntry.objects.filter(event_id__in=lost).delete()
    ProcessedEvent.objects.filter(consumer="audit", event_id__in=lost).delete()

    since = (now - timedelta(minutes=5)).isoformat()
    first_output = call("replay", "audit", "--from-timestamp", since)
    after_first = audit_snapshot()
    second_output = call("replay", "audit", "--from-timestamp", since)

    assert first_output == "audit replay: 3 message(s): 3 applied"
    assert second_output == "audit replay: 3 message(s): 3 duplicate"
    assert audit_snapshot() == after_first
    assert sorted(str(row[1]) for row in after_first) == sorted(envelope.event_id for envelope in old + recent)
    assert ProcessedEvent.objects.filter(consumer="audit").count() == 5
    assert kafka_inspector.committed_offsets(AuditConsumer().group_id(), topic) == live_offsets
    assert kafka_inspector.group_ids() == [AuditConsumer().group_id()]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("fast_consumers")
def test_replay_dlq_redrives_after_fix(kafka_producer, make_envelope, kafka_inspector, monkeypatch):
    order_id = str(uuid.uuid4())
    placed = make_envelope("order.placed", aggregate_id=order_id)
    topic = topic_for("order")
    dlq = dead_letter_topic(topic)

    def broken_handle(self, envelope, source):
        raise ConnectionError("template service unreachable")

    original_handle = NotificationsConsumer.handle
    monkeypatch.setattr(NotificationsConsumer, "handle", broken_handle)
    delivered = kafka_producer.send_envelope(placed)
    call("run_consumer", "notifications", "--idle-timeout", "2")
    # Another consumer's dead letter in the same topic must be left to that consumer.
    kafka_producer.send(
        dlq,
        make_envelope("order.paid").to_json(),
        headers=[
            ("dlq.consumer", b"audit"),
            ("dlq.attempts", b"3"),
            ("dlq.original.topic", topic.encode()),
            ("dlq.original.partition", b"0"),
            ("dlq.original.offset", b"99"),
        ],
    )

    with pytest.raises(CommandError, match="1 dead letter"):
        call("replay_dlq", "notifications")
    dead_letters = kafka_inspector.read_topic(dlq, expected=3)
    assert len(dead_letters) == 3
    # Both notification dead letters share the order's key, so the later offset is the re-driven one.
    ours = sorted(
        (message for message in dead_letters if dict(message.headers())["dlq.consumer"] == b"notifications"),
        key=lambda message: message.offset(),
    )
    assert len(ours) == 2
    headers = dict(ours[-1].headers())
    assert headers["dlq.attempts"] == b"6"
    assert headers["dlq.original.offset"] == str(delivered.offset).encode()
    assert headers["dlq.original.partition"] == str(delivered.partition).encode()
    assert [name for name, _ in ours[-1].headers()].count("dlq.attempts") == 1
    assert not Notification.objects.exists()

    monkeypatch.setattr(NotificationsConsumer, "handle", original_handle)
    fixed_output = call("replay_dlq", "notifications")
    again_output = call("replay_dlq", "notifications")

    assert fixed_output == "notifications dead letters: 1 message(s): 1 applied"
    assert again_output == "notifications dead letters: 0 message(s)"
    notification = Notification.objects.get()
    assert str(notification.order_id) == order_id
    assert str(notification.event_id) == placed.event_id
    assert notification.kind == Notification.Kind.ORDER_PLACED

"""The consumer framework against the real broker: exactly-once effects, offsets, retries, dead letters, rebalances."""
from __future__ import annotations

import threading
import time
from collections import Counter

import pytest
from django.db import OperationalError, connection

from cdc.consumers import processing
from cdc.consumers.audit import AuditConsumer
from cdc.consumers.runner import ConsumerRunner
from cdc.envelope import dead_letter_topic, topic_for
from cdc.models import AuditEntry, ProcessedEvent

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast_consumers")]

IDLE_SECONDS = 2.0


class SimulatedCrash(Exception):
    pass


def run_audit(consumer=None, **options) -> Counter:
    options.setdefault("idle_timeout", IDLE_SECONDS)
    return ConsumerRunner(consumer or AuditConsumer()).run(**options)


def audited_event_ids() -> list[str]:
    return sorted(str(event_id) for event_id in AuditEntry.objects.values_list("event_id", flat=True))


def headers_of(message) -> dict[str, bytes]:
    return dict(message.headers() or [])


def test_duplicate_deliveries_applied_once(kafka_producer, make_envelope, kafka_inspector):
    first = make_envelope("order.placed")
    second = make_envelope("order.paid", aggregate_id=first.aggregate_id, aggregate_version=2)
    # The relay repeats messages after a crash; the copies are byte-identical.
    for envelope in (first, first, first, second, second):
        kafka_producer.send_envelope(envelope)

    stats = run_audit()

    assert audited_event_ids() == sorted([first.event_id, second.event_id])
    assert ProcessedEvent.objects.filter(consumer="audit").count() == 2
    assert stats == Counter(applied=2, duplicate=3)
    topic = topic_for("order")
    assert kafka_inspector.committed_to_end(AuditConsumer().group_id(), topic)


def test_crash_before_offset_commit_redelivers(kafka_producer, make_envelope, kafka_inspector, monkeypatch):
    first = make_envelope("order.placed")
    second = make_envelope("order.paid", aggregate_id=first.aggregate_id, aggregate_version=2)
    kafka_producer.send_envelope(first)
    kafka_producer.send_envelope(second)

    def crash(self, kafka_consumer, message):
        raise SimulatedCrash()

    # Fail between the handler's commit and the offset store, where a killed process could stop.
    original_acknowledge = ConsumerRunner._acknowledge
    monkeypatch.setattr(ConsumerRunner, "_acknowledge", crash)
    with pytest.raises(SimulatedCrash):
        run_audit()

    assert audited_event_ids() == [first.event_id]
    topic = topic_for("order")
    assert all(offset < 0 for offset in kafka_inspector.committed_offsets(AuditConsumer().group_id(), topic).values())

    monkeypatch.setattr(ConsumerRunner, "_acknowledge", original_acknowledge)
    stats = run_audit()

    assert stats == Counter(duplicate=1, applied=1)
    assert audited_event_ids() == sorted([first.event_id, second.event_id])
    assert AuditEntry.objects.filter(event_id=first.event_id).count() == 1


def test_failing_handler_dead_lettered_after_retries(kafka_producer, make_envelope, kafka_inspector, monkeypatch):
    before = make_envelope("order.placed")
    failing = make_envelope("order.paid", aggregate_id=before.aggregate_id, aggregate_version=2)
    after = make_envelope("order.fulfilled", aggregate_id=before.aggregate_id, aggregate_version=3)
    calls = Counter()
    original_handle = AuditConsumer.handle

    def handle(self, envelope, source):
        calls[envelope.event_id] += 1
        if envelope.event_id == failing.event_id:
            raise RuntimeError("audit store rejected the payload")
        original_handle(self, envelope, source)

    monkeypatch.setattr(AuditConsumer, "handle", handle)
    # One aggregate, so all three share a partition and `after` waits behind `failing`.
    deliveries = [kafka_producer.send_envelope(envelope) for envelope in (before, failing, after)]

    stats = run_audit()

    assert stats == Counter(applied=2, dead_lettered=1)
    assert audited_event_ids() == sorted([before.event_id, after.event_id])
    assert calls[failing.event_id] == 3
    assert not ProcessedEvent.objects.filter(event_id=failing.event_id).exists()

    topic = topic_for("order")
    [dead_letter] = kafka_inspector.read_topic(dead_letter_topic(topic), expected=1)
    headers = headers_of(dead_letter)
    source = deliveries[1]
    assert dead_letter.key() == failing.key
    assert dead_letter.value() == failing.to_json()
    assert headers["event_id"] == failing.event_id.encode()
    assert headers["type"] == b"order.paid"
    assert headers["dlq.consumer"] == b"audit"
    assert headers["dlq.attempts"] == b"3"
    assert headers["dlq.error.type"] == b"builtins.RuntimeError"
    assert headers["dlq.error.message"] == b"audit store rejected the payload"
    assert b"audit store rejected the payload" in headers["dlq.error.traceback"]
    assert headers["dlq.original.topic"] == topic.encode()
    assert headers["dlq.original.partition"] == str(source.partition).encode()
    assert headers["dlq.original.offset"] == str(source.offset).encode()
    assert "dlq.failed_at" in headers
    assert kafka_inspector.committed_to_end(AuditConsumer().group_id(), topic)


def test_poison_messages_dead_lettered_at_once(kafka_producer, make_envelope, kafka_inspector, monkeypatch):
    topic = topic_for("order")
    good = make_envelope("order.placed")
    timeless = make_envelope("order.paid", aggregate_id=good.aggregate_id, occurred_at="yesterday")
    key = good.key
    calls = Counter()
    original_handle = AuditConsumer.handle

    def handle(self, envelope, source):
        calls[envelope.event_id] += 1
        original_handle(self, envelope, source)

    monkeypatch.setattr(AuditConsumer, "handle", handle)
    not_json = kafka_producer.send(topic, b"{not json", key=key)
    kafka_producer.send_envelope(timeless)
    kafka_producer.send_envelope(good)

    stats = run_audit()

    assert stats == Counter(dead_lettered=2, applied=1)
    assert audited_event_ids() == [good.event_id]
    # The handler rejected the bad time with InvalidEvent once, without retries.
    assert calls[timeless.event_id] == 1

    dead_letters = kafka_inspector.read_topic(dead_letter_topic(topic), expected=2)
    assert len(dead_letters) == 2
    by_offset = {int(headers_of(message)["dlq.original.offset"]): headers_of(message) for message in dead_letters}
    unparsed = by_offset[not_json.offset]
    assert unparsed["dlq.error.type"] == b"cdc.consumers.processing.InvalidEnvelope"
    assert unparsed["dlq.attempts"] == b"1"
    invalid = by_offset[not_json.offset + 1]
    assert invalid["dlq.error.type"] == b"cdc.consumers.base.InvalidEvent"
    assert invalid["dlq.attempts"] == b"1"
    assert b"yesterday" in invalid["dlq.error.message"]


def test_rebalance_applies_each_event_once(kafka_producer, make_envelope, kafka_inspector):
    class SlowAudit(AuditConsumer):
        # Slow enough that the second member joins while the first is mid-stream.
        def handle(self, envelope, source):
            time.sleep(0.05)
            super().handle(envelope, source)

    envelopes = [make_envelope("order.placed") for _ in range(120)]
    for envelope in envelopes:
        kafka_producer.send_envelope(envelope)

    first = ConsumerRunner(SlowAudit())
    second = ConsumerRunner(SlowAudit())
    errors: list[BaseException] = []

    def run(runner: ConsumerRunner) -> None:
        try:
            runner.run(idle_timeout=3.0)
        except BaseException as error:  # noqa: BLE001 - the main thread asserts on every failure
            errors.append(error)
        finally:
            connection.close()

    first_thread = threading.Thread(target=run, args=(first,))
    first_thread.start()
    deadline = time.monotonic() + 30
    while first.stats["applied"] < 15 and time.monotonic() < deadline:
        time.sleep(0.05)
    second_thread = threading.Thread(target=run, args=(second,))
    second_thread.start()
    first_thread.join(timeout=90)
    second_thread.join(timeout=90)

    assert errors == []
    assert not first_thread.is_alive()
    assert not second_thread.is_alive()
    assert audited_event_ids() == sorted(envelope.event_id for envelope in envelopes)
    assert ProcessedEvent.objects.filter(consumer="audit").count() == 120
    assert first.stats["applied"] + second.stats["applied"] == 120
    # The second member took partitions over, so the rebalance happened mid-stream.
    assert first.stats["applied"] < 120
    assert second.stats["applied"] > 0
    # Offsets were committed on revocation, so the new owner re-read nothing.
    assert first.stats["duplicate"] + second.stats["duplicate"] == 0


def test_stale_hook_skips_older_version(kafka_producer, make_envelope):
    class VersionedAudit(AuditConsumer):
        def is_stale(self, envelope):
            newest = (
                AuditEntry.objects.filter(aggregate_type=envelope.aggregate_type, aggregate_id=envelope.aggregate_id)
                .order_by("-aggregate_version")
                .values_list("aggregate_version", flat=True)
                .first()
            )
            return newest is not None and newest >= envelope.aggregate_version

    newer = make_envelope("order.paid", aggregate_version=2)
    older = make_envelope("order.placed", aggregate_id=newer.aggregate_id, aggregate_version=1)
    for envelope in (newer, older, older):
        kafka_producer.send_envelope(envelope)

    stats = run_audit(VersionedAudit())

    assert stats == Counter(applied=1, stale=1, duplicate=1)
    assert audited_event_ids() == [newer.event_id]
    assert ProcessedEvent.objects.filter(event_id=older.event_id).exists()


def test_database_outage_not_dead_lettered(kafka_producer, make_envelope, kafka_inspector, monkeypatch, settings):
    envelope = make_envelope("order.placed")
    kafka_producer.send_envelope(envelope)
    outage_checks = iter([False, False])
    failures = iter([OperationalError("server closed the connection"), OperationalError("connection refused")])
    original_handle = AuditConsumer.handle

    def handle(self, envelope, source):
        failure = next(failures, None)
        if failure is not None:
            raise failure
        original_handle(self, envelope, source)

    monkeypatch.setattr(AuditConsumer, "handle", handle)
    monkeypatch.setattr(processing, "database_available", lambda using: next(outage_checks, True))
    # One attempt left would dead-letter at the first counted failure.
    settings.CDC_CONSUMER_MAX_ATTEMPTS = 1

    stats = run_audit()

    assert stats == Counter(applied=1)
    assert audited_event_ids() == [envelope.event_id]
    assert all(offset == 0 for offset in kafka_inspector.end_offsets(dead_letter_topic(topic_for("order"))).values())

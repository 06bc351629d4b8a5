"""Measure events per second and commit-to-consumer latency through the outbox relay, beside a raw Kafka ceiling.

Run from the repository root while the native stack is up (make stack-up):

    .venv/bin/python bench/cdc_relay.py [--events 20000] [--latency-events 1500] [--rate 300]

Three paths carry the same envelopes (same keys, values and headers) to the
same broker, each to topics of its own:

- raw: this process produces them with the relay's producer settings
  straight to Kafka; the ceiling the relay cannot beat;
- logical and poll: this process commits outbox rows, and a
  `manage.py run_cdc_relay` subprocess relays them.

Throughput: the whole backlog is written first (raw: built in memory), then
published. Events per second is (N - 1) divided by the time between the first
and the last message received by a consumer in this process, so process
start-up is left out for every path.

Latency: events are committed one per transaction at a fixed rate while the
relay runs, and the consumer records when each arrives. For the relay paths
the clock starts after COMMIT returns; for the raw path it starts before
produce(). Both clocks are this process's time.time().

The script creates a database of its own and drops it, its slot, its
publication and its topics at the end.
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "commerce.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django  # noqa: E402 - the settings module must be chosen first.

django.setup()

from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from cdc.envelope import Envelope  # noqa: E402
from cdc.relay import database  # noqa: E402
from cdc.relay.logical import LogicalSource, drop_publication, drop_slot  # noqa: E402
from cdc.relay.publisher import producer_config  # noqa: E402
from commerce.models import OutboxEvent  # noqa: E402

PARTITIONS = 3
AGGREGATES = 1000
ROWS_PER_BACKLOG_TRANSACTION = 500


def build_event(sequence: int) -> OutboxEvent:
    """Build the sequence-th event: 1000 order aggregates in turn, with a payload shaped like order.placed."""
    aggregate_id = str(uuid.UUID(int=sequence % AGGREGATES + 1))
    return OutboxEvent(
        event_type="order.placed",
        aggregate_type="order",
        aggregate_id=aggregate_id,
        aggregate_version=sequence // AGGREGATES + 1,
        occurred_at=timezone.now(),
        payload={
            "order_id": aggregate_id,
            "total": "129.90",
            "currency": "USD",
            "lines": [{"sku": f"SKU-{sequence % 97:05d}", "quantity": 2, "unit_price": "64.95"}],
        },
    )


class Receiver:
    """A consumer thread that records when each event id arrives, reading every partition from offset 0."""

    def __init__(self, topic: str) -> None:
        self.arrivals: dict[str, float] = {}
        self.messages = 0
        self._topic = topic
        self._stop = threading.Event()
        self._consumer = Consumer(
            {
                "bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS,
                "group.id": f"{topic}.bench-reader",
                "enable.auto.commit": False,
                "fetch.wait.max.ms": 10,
            }
        )
        self._consumer.assign([TopicPartition(topic, partition, 0) for partition in range(PARTITIONS)])
        self._thread = threading.Thread(target=self._run, name=f"receiver-{topic}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            # Take what is already fetched without waiting; when nothing is,
            # block in poll(), which returns as soon as one message arrives.
            # consume() with a timeout would hold early messages until the
            # timeout and add it to their latency.
            messages = self._consumer.consume(num_messages=1000, timeout=0)
            if not messages:
                message = self._consumer.poll(0.05)
                messages = [message] if message is not None else []
            received = time.time()
            for message in messages:
                if message.error() is not None:
                    continue
                event_id = dict(message.headers())["event_id"].decode()
                self.messages += 1
                self.arrivals.setdefault(event_id, received)

    def wait_for(self, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while len(self.arrivals) < count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self._topic}: {len(self.arrivals)} of {count} events arrived within {timeout}s")
            time.sleep(0.02)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._consumer.close()


@dataclass
class Throughput:
    path: str
    events: int
    seconds: float

    @property
    def per_second(self) -> float:
        return (self.events - 1) / self.seconds


@dataclass
class Latency:
    path: str
    samples: list[float]

    def percentile_ms(self, fraction: float) -> float:
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000


def create_topics(prefixes: list[str]) -> None:
    admin = AdminClient({"bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS})
    # Created up front, so topic creation is not part of any measurement.
    futures = admin.create_topics([NewTopic(f"{prefix}.order", PARTITIONS, 1) for prefix in prefixes])
    for future in futures.values():
        future.result(timeout=30)


def delete_topics(prefixes: list[str]) -> None:
    admin = AdminClient({"bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS})
    futures = admin.delete_topics([f"{prefix}.order" for prefix in prefixes], operation_timeout=30)
    for future in futures.values():
        try:
            future.result(timeout=30)
        except Exception as exc:  # noqa: BLE001 - a leftover bench topic is reported, not fatal.
            print(f"could not delete a bench topic: {exc}", file=sys.stderr)


def measure_raw(prefix: str, events: int, latency_events: int, rate: float) -> tuple[Throughput, Latency]:
    settings.KAFKA_TOPIC_PREFIX = prefix
    # The relay's settings; log_level 3 only hides librdkafka's notice that gapless delivery is experimental.
    producer = Producer({**producer_config(client_id="bench-raw"), "log_level": 3})
    envelopes = [Envelope.from_outbox(build_event(sequence)) for sequence in range(events)]

    receiver = Receiver(f"{prefix}.order")
    try:
        for envelope in envelopes:
            _produce(producer, envelope)
        producer.flush(60)
        receiver.wait_for(events, timeout=120)
        arrivals = sorted(receiver.arrivals.values())
        throughput = Throughput("raw", events, arrivals[-1] - arrivals[0])

        sent_at: dict[str, float] = {}
        interval = 1.0 / rate
        start = time.monotonic()
        for index in range(latency_events):
            _sleep_until(start + index * interval)
            envelope = Envelope.from_outbox(build_event(events + index))
            sent_at[envelope.event_id] = time.time()
            _produce(producer, envelope)
            producer.poll(0)
        producer.flush(60)
        receiver.wait_for(events + latency_events, timeout=120)
        latency = Latency("raw", [receiver.arrivals[event_id] - sent for event_id, sent in sent_at.items()])
    finally:
        receiver.close()
    return throughput, latency


def _produce(producer: Producer, envelope: Envelope) -> None:
    while True:
        try:
            producer.produce(envelope.topic, key=envelope.key, value=envelope.to_json(), headers=envelope.headers())
            return
        except BufferError:
            producer.poll(0.05)


def _sleep_until(moment: float) -> None:
    delay = moment - time.monotonic()
    if delay > 0:
        time.sleep(delay)


def write_backlog(events: int, *, first_sequence: int) -> None:
    for start in range(0, events, ROWS_PER_BACKLOG_TRANSACTION):
        stop = min(events, start + ROWS_PER_BACKLOG_TRANSACTION)
        with transaction.atomic():
            OutboxEvent.objects.bulk_create(build_event(first_sequence + index) for index in range(start, stop))


def start_relay(mode: str, prefix: str, slot: str, publication: str, batch_size: int) -> subprocess.Popen:
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "KAFKA_TOPIC_PREFIX": prefix,
        "LOG_LEVEL": "ERROR",
    }
    command = [
        sys.executable, "manage.py", "run_cdc_relay", "--mode", mode,
        "--slot", slot, "--publication", publication, "--batch-size", str(batch_size),
    ]
    return subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL)


def stop_relay(relay: subprocess.Popen) -> None:
    relay.send_signal(signal.SIGTERM)
    try:
        relay.wait(timeout=30)
    except subprocess.TimeoutExpired:
        relay.kill()
        relay.wait()


def measure_relay(
    mode: str, prefix: str, *, events: int, latency_events: int, rate: float, slot: str, publication: str, batch_size: int
) -> tuple[Throughput, Latency]:
    first_sequence = 10_000_000 if mode == "poll" else 0
    write_backlog(events, first_sequence=first_sequence)

    receiver = Receiver(f"{prefix}.order")
    relay = start_relay(mode, prefix, slot, publication, batch_size)
    try:
        receiver.wait_for(events, timeout=300)
        arrivals = sorted(receiver.arrivals.values())
        throughput = Throughput(mode, events, arrivals[-1] - arrivals[0])

        committed_at: dict[str, float] = {}
        interval = 1.0 / rate
        start = time.monotonic()
        for index in range(latency_events):
            _sleep_until(start + index * interval)
            with transaction.atomic():
                event = build_event(first_sequence + events + index)
                event.save()
            committed_at[str(event.event_id)] = time.time()
        receiver.wait_for(events + latency_events, timeout=120)
        latency = Latency(mode, [receiver.arrivals[event_id] - committed for event_id, committed in committed_at.items()])
    finally:
        stop_relay(relay)
        receiver.close()
    return throughput, latency


def create_slot(slot: str, publication: str) -> None:
    """Create the publication and slot on the empty database, so the logical run reads the backlog from the slot."""
    with database.connect(application_name="bench-setup") as setup:
        source = LogicalSource(setup, slot=slot, publication=publication, heartbeat_seconds=10)
        source.prepare()
        source.backfill_finished()


def drop_slot_and_publication(slot: str, publication: str) -> None:
    with database.connect(application_name="bench-cleanup") as cleanup:
        drop_slot(cleanup, slot)
        drop_publication(cleanup, publication)


def print_report(throughputs: list[Throughput], latencies: list[Latency], arguments: argparse.Namespace) -> None:
    raw_throughput = throughputs[0]
    raw_latency = latencies[0]
    print(
        f"\n{arguments.events} events per throughput run, {arguments.latency_events} latency events at "
        f"{arguments.rate:g}/s, relay batch size {arguments.batch_size}, {PARTITIONS} partitions\n"
    )
    print(f"{'path':<8} {'events/s':>10} {'of raw':>8} {'p50 ms':>8} {'p99 ms':>8} {'p50 vs raw':>11}")
    for throughput, latency in zip(throughputs, latencies, strict=True):
        share = throughput.per_second / raw_throughput.per_second
        p50 = latency.percentile_ms(0.50)
        print(
            f"{throughput.path:<8} {throughput.per_second:>10.0f} {share:>7.0%} {p50:>8.1f} "
            f"{latency.percentile_ms(0.99):>8.1f} {p50 / raw_latency.percentile_ms(0.50):>10.1f}x"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000, help="Events per throughput run (default %(default)s).")
    parser.add_argument(
        "--latency-events", type=int, default=1500, help="Events per latency run (default %(default)s)."
    )
    parser.add_argument("--rate", type=float, default=300.0, help="Events per second in latency runs (default %(default)s).")
    parser.add_argument("--batch-size", type=int, default=1000, help="Relay --batch-size (default %(default)s).")
    arguments = parser.parse_args()
    if arguments.events < 2 or arguments.latency_events < 1 or arguments.rate <= 0 or arguments.batch_size < 1:
        parser.error("--events must be at least 2, --latency-events and --batch-size at least 1, --rate above 0.")

    run_id = uuid.uuid4().hex[:8]
    prefixes = {path: f"bench-{run_id}-{path}" for path in ("raw", "logical", "poll")}
    slot = publication = f"bench_relay_{run_id}"

    # A database of its own, so neither the development data nor a concurrent test run is touched.
    connection.settings_dict.setdefault("TEST", {})["NAME"] = f"bench_cdc_relay_{os.getpid()}"
    original_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    create_topics(list(prefixes.values()))
    try:
        create_slot(slot, publication)
        raw = measure_raw(prefixes["raw"], arguments.events, arguments.latency_events, arguments.rate)
        options = {
            "events": arguments.events,
            "latency_events": arguments.latency_events,
            "rate": arguments.rate,
            "slot": slot,
            "publication": publication,
            "batch_size": arguments.batch_size,
        }
        logical = measure_relay("logical", prefixes["logical"], **options)
        # The poll run needs no slot, and an unread slot would retain its WAL.
        drop_slot_and_publication(slot, publication)
        poll = measure_relay("poll", prefixes["poll"], **options)
    finally:
        drop_slot_and_publication(slot, publication)
        delete_topics(list(prefixes.values()))
        connection.creation.destroy_test_db(original_name, verbosity=0)

    print_report([raw[0], logical[0], poll[0]], [raw[1], logical[1], poll[1]], arguments)


if __name__ == "__main__":
    main()

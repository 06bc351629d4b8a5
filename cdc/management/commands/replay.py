"""Re-consume a consumer's topics from a point in time: `python manage.py replay NAME --from-timestamp T`."""
import argparse
import threading
from datetime import datetime

from django.core.management.base import BaseCommand, CommandError

from cdc.consumers.cli import format_stats
from cdc.consumers.dead_letters import DeadLetterError
from cdc.consumers.registry import UnknownConsumer, consumer_names, get_consumer
from cdc.consumers.replay import ReplayTimeout, replay_from_timestamp
from cdc.consumers.shutdown import stop_on_signals

# Epoch values below this (1973-03-03 in milliseconds) are almost certainly seconds.
MIN_EPOCH_MS = 10**11


class Command(BaseCommand):
    help = (
        "Read the topics of consumer NAME again from the first message at or after a time, up to the end "
        "offsets at the start of the run, and apply every event the consumer has no record of. The live "
        "consumer group's offsets are not touched, and running the same replay twice changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="Registered consumer name: " + ", ".join(consumer_names()) + ".")
        parser.add_argument(
            "--from-timestamp",
            required=True,
            type=parse_timestamp,
            metavar="T",
            help="Start time: ISO 8601 with a UTC offset (2025-01-31T09:00:00Z) or Unix epoch milliseconds.",
        )

    def handle(self, *args, **options):
        try:
            consumer = get_consumer(options["name"])
        except UnknownConsumer as error:
            raise CommandError(str(error)) from None

        stop_event = threading.Event()
        with stop_on_signals(stop_event.set):
            try:
                stats = replay_from_timestamp(consumer, timestamp_ms=options["from_timestamp"], stop_event=stop_event)
            except (DeadLetterError, ReplayTimeout) as error:
                raise CommandError(
                    f"{error} Events applied before the failure stay applied; the replay can be run again."
                ) from error
        self.stdout.write(f"{consumer.name} replay: {format_stats(stats)}")


def parse_timestamp(text: str) -> int:
    """Parse an ISO 8601 time with a UTC offset, or epoch milliseconds, into epoch milliseconds."""
    if text.isdigit():
        value = int(text)
        if value < MIN_EPOCH_MS:
            raise argparse.ArgumentTypeError(
                f"{text} looks like epoch seconds; give epoch milliseconds ({value * 1000}) or an ISO 8601 time"
            )
        return value

    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid time {text!r}; give ISO 8601 with a UTC offset (2025-01-31T09:00:00Z) or epoch milliseconds"
        ) from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no UTC offset; add one, e.g. Z or +02:00")
    return int(moment.timestamp() * 1000)

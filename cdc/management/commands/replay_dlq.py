"""Re-drive a consumer's dead letters: `python manage.py replay_dlq NAME`."""
import threading

from django.core.management.base import BaseCommand, CommandError

from cdc.consumers.cli import format_stats
from cdc.consumers.dead_letters import DeadLetterError
from cdc.consumers.processing import Outcome
from cdc.consumers.registry import UnknownConsumer, consumer_names, get_consumer
from cdc.consumers.replay import ReplayTimeout, replay_dead_letters
from cdc.consumers.shutdown import stop_on_signals


class Command(BaseCommand):
    help = (
        "Apply again the dead letters that consumer NAME wrote to <topic>.dlq before this run, with the usual "
        "deduplication. Progress is committed per message, so the next run starts after this one. A dead letter "
        "that fails again is written again to the end of its dead-letter topic with a higher attempt count; "
        "the command then exits with status 1."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="Registered consumer name: " + ", ".join(consumer_names()) + ".")

    def handle(self, *args, **options):
        try:
            consumer = get_consumer(options["name"])
        except UnknownConsumer as error:
            raise CommandError(str(error)) from None

        stop_event = threading.Event()
        with stop_on_signals(stop_event.set):
            try:
                stats = replay_dead_letters(consumer, stop_event=stop_event)
            except (DeadLetterError, ReplayTimeout) as error:
                raise CommandError(f"{error} Messages handled before the failure stay committed.") from error

        self.stdout.write(f"{consumer.name} dead letters: {format_stats(stats)}")
        failed_again = stats[Outcome.DEAD_LETTERED.value]
        if failed_again:
            raise CommandError(
                f"{failed_again} dead letter(s) failed again and were written back to the dead-letter topic; "
                "fix the cause named in their dlq.error.* headers and run replay_dlq again.",
                returncode=1,
            )


"""Run one Kafka consumer: `python manage.py run_consumer NAME [--max-messages N] [--idle-timeout S]`."""
from django.core.management.base import BaseCommand, CommandError

from cdc.consumers.cli import format_stats, positive_float, positive_int
from cdc.consumers.dead_letters import DeadLetterError
from cdc.consumers.registry import UnknownConsumer, consumer_names, get_consumer
from cdc.consumers.runner import ConsumerRunner
from cdc.consumers.shutdown import stop_on_signals


class Command(BaseCommand):
    help = (
        "Consume the topics of consumer NAME as a member of its consumer group, applying each event once and "
        "sending messages that keep failing to <topic>.dlq. Runs until SIGTERM or SIGINT, which finish the "
        "current message, commit and leave the group."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="Registered consumer name: " + ", ".join(consumer_names()) + ".")
        parser.add_argument(
            "--max-messages",
            type=positive_int,
            help="Stop after this many messages, counting skipped and dead-lettered ones. Default: no limit.",
        )
        parser.add_argument(
            "--idle-timeout",
            type=positive_float,
            help="Stop after this many seconds without a message, counted from the last partition assignment. "
            "Default: wait forever.",
        )

    def handle(self, *args, **options):
        try:
            consumer = get_consumer(options["name"])
        except UnknownConsumer as error:
            raise CommandError(str(error)) from None

        runner = ConsumerRunner(consumer)
        with stop_on_signals(runner.stop):
            try:
                stats = runner.run(max_messages=options["max_messages"], idle_timeout=options["idle_timeout"])
            except DeadLetterError as error:
                raise CommandError(
                    f"{error} The message's offset was not committed, so it is delivered again when the consumer restarts."
                ) from error
        self.stdout.write(f"{consumer.name}: {format_stats(stats)}")

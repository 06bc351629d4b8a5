"""Relay committed outbox events to Kafka: `python manage.py run_cdc_relay [--mode logical|poll] [--once]`."""
import argparse

from django.core.management.base import BaseCommand, CommandError

from cdc.consumers.shutdown import stop_on_signals
from cdc.relay.config import MODES, RelayConfig
from cdc.relay.logical import RelaySetupError
from cdc.relay.runner import Relay, RelayFailed


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


class Command(BaseCommand):
    help = (
        "Publish committed outbox rows to Kafka in commit order (one topic per aggregate type, keyed by aggregate "
        "id) and delete them once the broker acknowledged them. Runs until SIGTERM or SIGINT, which finish the "
        "current batch first."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--mode",
            choices=MODES,
            help="logical reads a replication slot (needs wal_level=logical); poll queries unpublished rows. "
            "Default: the CDC_RELAY_MODE setting, else logical.",
        )
        parser.add_argument(
            "--slot",
            help="Replication slot of logical mode, created on first start. Default: CDC_RELAY_SLOT, else commerce_outbox.",
        )
        parser.add_argument(
            "--publication",
            help="Publication of logical mode, created on first start. "
            "Default: CDC_RELAY_PUBLICATION, else commerce_outbox.",
        )
        parser.add_argument(
            "--batch-size",
            type=_positive_int,
            help="Maximum outbox rows (poll) or decoded messages (logical) per batch. "
            "Default: CDC_RELAY_BATCH_SIZE, else 1000.",
        )
        parser.add_argument(
            "--once",
            action="store_true",
            help="Publish what is committed now and exit; exit with status 1 at the first failed batch.",
        )

    def handle(self, *args, **options):
        try:
            config = RelayConfig.from_settings(
                mode=options["mode"],
                slot=options["slot"],
                publication=options["publication"],
                batch_size=options["batch_size"],
            )
        except ValueError as error:
            raise CommandError(str(error)) from None

        relay = Relay(config)
        with stop_on_signals(relay.stop_event.set):
            try:
                stats = relay.run(once=options["once"])
            except (RelayFailed, RelaySetupError) as error:
                raise CommandError(str(error)) from error
        self.stdout.write(f"relay {config.mode}: published {stats.published} event(s) in {stats.batches} batch(es)")

"""Print relay and consumer lag: `python manage.py cdc_status [--json]`."""
import json

from django.core.management.base import BaseCommand, CommandError

from cdc.relay.config import RelayConfig
from cdc.relay.status import collect_status


def _format_bytes(count: int) -> str:
    if count < 1024:
        return f"{count} B"
    if count < 1024**2:
        return f"{count / 1024:.1f} KiB"
    return f"{count / 1024**2:.1f} MiB"


class Command(BaseCommand):
    help = (
        "Print the replication slot's lag and retained WAL, the outbox backlog and the age of its oldest row, and "
        "the lag of each consumer group named <KAFKA_TOPIC_PREFIX>.<consumer>. Exits with status 1 when a section "
        "could not be collected."
    )

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="Print one JSON object instead of text.")
        parser.add_argument("--slot", help="Replication slot to report. Default: CDC_RELAY_SLOT, else commerce_outbox.")
        parser.add_argument(
            "--timeout", type=float, default=5.0, help="Seconds to wait for PostgreSQL and Kafka. Default: 5."
        )

    def handle(self, *args, **options):
        try:
            config = RelayConfig.from_settings(slot=options["slot"])
        except ValueError as error:
            raise CommandError(str(error)) from None
        status = collect_status(slot=config.slot, timeout=options["timeout"])

        if options["json"]:
            self.stdout.write(json.dumps(status, indent=2, sort_keys=True))
        else:
            self.stdout.write("\n".join(self._format(status)))

        failed = [name for name, section in status.items() if "error" in section]
        if failed:
            raise CommandError(f"Could not collect: {', '.join(failed)}.")

    def _format(self, status: dict) -> list[str]:
        lines = []
        relay = status["relay"]
        if "error" in relay:
            lines.append(f"relay: error: {relay['error']}")
        elif relay["mode"] is None:
            lines.append("relay: not running (no session holds a relay lock)")
        else:
            lines.append(f"relay: {relay['mode']} mode, PostgreSQL backend pid {relay['backend_pid']}")

        slot = status["slot"]
        if "error" in slot:
            lines.append(f"slot {slot['name']}: error: {slot['error']}")
        elif not slot["exists"]:
            lines.append(f"slot {slot['name']}: does not exist (poll mode, or the relay has not started yet)")
        else:
            lines.append(
                f"slot {slot['name']}: lag {_format_bytes(slot['lag_bytes'])}, "
                f"retains {_format_bytes(slot['retained_wal_bytes'])} of WAL, confirmed {slot['confirmed_flush_lsn']}"
            )

        outbox = status["outbox"]
        if "error" in outbox:
            lines.append(f"outbox: error: {outbox['error']}")
        elif outbox["backlog"] == 0:
            lines.append("outbox: 0 unpublished rows")
        else:
            lines.append(
                f"outbox: {outbox['backlog']} unpublished rows, oldest {outbox['oldest_unpublished_age_seconds']:.1f} s old"
            )

        groups = status["consumer_groups"]
        if "error" in groups:
            lines.append(f"consumer groups: error: {groups['error']}")
        elif not groups["groups"]:
            lines.append(f"consumer groups {groups['prefix']}.*: none")
        else:
            lines.append(f"consumer groups {groups['prefix']}.*:")
            for group_id, group in groups["groups"].items():
                lines.append(f"  {group_id}: lag {group['lag']} ({group['state']})")
        return lines

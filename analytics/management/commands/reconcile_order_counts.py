"""Compare orders with the analytics projection: `python manage.py reconcile_order_counts [--from DATE] [--to DATE] [--json]`."""
import argparse
import json
from datetime import UTC, date, datetime, timedelta

from django.core.management.base import BaseCommand, CommandError

from analytics.definitions import COMMITTED_STATES
from analytics.reconciliation import BacklogUnavailable, Report, reconcile
from commerce.logging import get_logger

log = get_logger(__name__)

DEFAULT_DAYS = 7
# Exit status when Kafka is unreachable. Nothing was compared, so it reports no finding about the data.
EXIT_UNAVAILABLE = 2


def parse_day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid date {text!r}; give a day as YYYY-MM-DD") from None


class Command(BaseCommand):
    help = (
        "For the orders placed on each UTC day of a range, compare the count and money per state in the orders "
        "database with the analytics projection. Differences whose missing events are still in the outbox or "
        "after the analytics consumer's committed offsets are reported as lag; every other difference is "
        "unexplained and makes the command exit with status 1. Exits with status 2 when Kafka is unreachable."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--from",
            dest="start",
            type=parse_day,
            metavar="DATE",
            help=f"First UTC day (YYYY-MM-DD), included. Default: {DEFAULT_DAYS - 1} days before --to.",
        )
        parser.add_argument(
            "--to", dest="end", type=parse_day, metavar="DATE", help="Last UTC day (YYYY-MM-DD), included. Default: today."
        )
        parser.add_argument("--json", action="store_true", help="Print the result as one JSON document.")

    def handle(self, *args, **options):
        end = options["end"] or datetime.now(UTC).date()
        start = options["start"] or end - timedelta(days=DEFAULT_DAYS - 1)
        if start > end:
            raise CommandError(f"--from {start} is after --to {end}; give a range whose start is not after its end.")

        try:
            report = reconcile(start=start, end=end)
        except BacklogUnavailable as error:
            raise CommandError(f"{error} Nothing was compared.", returncode=EXIT_UNAVAILABLE) from error
        log.info(
            "analytics_reconciled",
            start=start.isoformat(),
            end=end.isoformat(),
            lag_orders=len(report.lag),
            unexplained_orders=len(report.unexplained),
            aggregate_drift=len(report.drift),
        )

        if options["json"]:
            self.stdout.write(json.dumps(report.as_dict(), indent=2, sort_keys=True))
        else:
            self._write_text(report)

        if report.has_unexplained:
            raise CommandError(
                f"{len(report.unexplained)} order(s) and {len(report.drift)} daily measure(s) differ without lag to "
                "explain them.",
                returncode=1,
            )

    def _write_text(self, report: Report) -> None:
        write = self.stdout.write
        write(f"Orders placed {report.start} to {report.end} (UTC days), orders database vs projection")
        write("Columns lag and unexplained are projection minus orders.")
        write(f"{'day':<10}  {'state':<18}  {'cur':<3}  {'orders':>7}  {'proj':>7}  {'lag':>5}  {'unexpl':>6}  "
              f"{'orders total':>14}  {'proj total':>14}")
        for (day, state, currency), bucket in sorted(report.buckets.items()):
            write(
                f"{day.isoformat():<10}  {state:<18}  {currency:<3}  {bucket.orders.count:>7}  {bucket.projection.count:>7}  "
                f"{bucket.lag.count:>5}  {bucket.unexplained.count:>6}  {bucket.orders.total:>14}  {bucket.projection.total:>14}"
            )
        if not report.buckets:
            write("(no orders)")

        write(f"Committed orders ({', '.join(sorted(COMMITTED_STATES))}) and their revenue net of refunds:")
        for (day, currency), totals in sorted(report.committed.items()):
            write(
                f"{day.isoformat()}  {currency}  orders {totals.orders_count} / {totals.orders_revenue}  "
                f"projection {totals.projection_count} / {totals.projection_revenue}"
            )

        write(
            f"Backlog: {report.unrelayed_events} order event(s) in the outbox, {report.backlog.pending_messages} "
            f"message(s) on {report.backlog.topic} after the committed offsets of {report.backlog.group_id}."
        )
        for title, differences in (("Lag", report.lag), ("Unexplained", report.unexplained)):
            write(f"{title}: {len(differences)} order(s)")
            for difference in differences:
                write(f"  {difference.order_id}  {difference.day}  {difference.reason}: {difference.detail}")
        write(f"Daily sums that differ from their facts: {len(report.drift)}")
        for item in report.drift:
            where = f" {item.category or '-'} {item.sku}" if item.sku is not None else ""
            write(
                f"  {item.table} {item.day} {item.currency}{where} {item.measure}: stored {item.stored}, "
                f"facts {item.from_facts}"
            )

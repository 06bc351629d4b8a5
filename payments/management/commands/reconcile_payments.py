"""`python manage.py reconcile_payments`: settle stuck payments with the provider."""
import json

from django.core.management.base import BaseCommand

from payments.reconciliation import reconcile_payments


class Command(BaseCommand):
    help = "Ask the payment provider about payments and refunds stuck in flight, and repair local state."

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than",
            type=float,
            default=None,
            help="Only payments unchanged for this many seconds (default: PAYMENT_RECONCILE_AFTER_SECONDS).",
        )
        parser.add_argument("--json", action="store_true", dest="as_json", help="Print the report as JSON.")

    def handle(self, *args, older_than: float | None, as_json: bool, **options):
        report = reconcile_payments(older_than_seconds=older_than)
        if as_json:
            self.stdout.write(json.dumps(report.__dict__, indent=2, sort_keys=True))
            return
        for name, ids in report.__dict__.items():
            suffix = f" ({', '.join(ids)})" if ids else ""
            self.stdout.write(f"{name}: {len(ids)}{suffix}")

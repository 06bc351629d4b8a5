"""Check stock counters against the ledger and the reservations: `python manage.py reconcile_inventory [--fix] [--json]`."""
import json

from django.core.management.base import BaseCommand, CommandError

from commerce.logging import get_logger
from inventory.services import reconcile

log = get_logger(__name__)


class Command(BaseCommand):
    help = (
        "Recompute on_hand from the stock ledger and reserved from active reservations, and list every SKU "
        "that drifted. Exits with status 1 when drift remains unfixed."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--fix",
            action="store_true",
            help="Repair drifted counters and write a reconciliation ledger row for each repair.",
        )
        parser.add_argument("--json", action="store_true", help="Print the result as one JSON document.")

    def handle(self, *args, **options):
        fix = options["fix"]
        result = reconcile(fix=fix, actor="reconcile_inventory")
        log.info(
            "inventory_reconciled",
            drift=len(result.drift),
            fixed=len(result.fixed),
            unfixed=len(result.unfixed),
        )

        if options["json"]:
            self.stdout.write(json.dumps(result.as_dict(), indent=2, sort_keys=True))
        else:
            self._write_text(result)

        if result.unfixed:
            skus = ", ".join(drift.sku for drift in result.unfixed)
            hint = "" if fix else " Run again with --fix to repair them."
            raise CommandError(f"{len(result.unfixed)} SKU(s) have unfixed drift: {skus}.{hint}", returncode=1)

    def _write_text(self, result) -> None:
        fixed = set(result.fixed)
        for drift in result.drift:
            if drift.sku in fixed:
                outcome = "fixed"
            elif drift.fixable:
                outcome = "not fixed"
            else:
                outcome = "not fixable: more units reserved than the ledger holds"
            self.stdout.write(
                f"{drift.sku}: on_hand {_show(drift.on_hand)} (ledger {drift.expected_on_hand}), "
                f"reserved {_show(drift.reserved)} (active reservations {drift.expected_reserved}) - {outcome}"
            )
        self.stdout.write(f"{len(result.drift)} SKU(s) drifted, {len(result.fixed)} fixed.")


def _show(value: int | None) -> str:
    return "missing" if value is None else str(value)

"""`python manage.py audit_consistency [--json]`: check the cross-boundary invariants on a quiet system."""
import json
import sys
import time

from django.core.management.base import BaseCommand

from commerce.audit import run_audit
from commerce.logging import get_logger

log = get_logger(__name__)


class Command(BaseCommand):
    help = "Check stock, order, payment and event invariants; exit 1 when any is violated."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", dest="as_json", help="Print the results as JSON.")
        parser.add_argument(
            "--skip",
            action="append",
            default=[],
            metavar="CHECK",
            help="Skip a check by name (repeatable), e.g. outbox_drained when no relay runs.",
        )
        parser.add_argument(
            "--settle",
            type=float,
            default=0.0,
            metavar="SECONDS",
            help="Re-run failing checks every 2 s for up to this many seconds, while in-flight work finishes.",
        )

    def handle(self, *args, as_json: bool, skip: list[str], settle: float, **options):
        deadline = time.monotonic() + settle
        results = run_audit(skip=set(skip))
        failed = [result.name for result in results if not result.ok]
        # Right after a load test, payments, expiries and the relay may still be finishing.
        while failed and time.monotonic() < deadline:
            time.sleep(2)
            results = run_audit(skip=set(skip))
            failed = [result.name for result in results if not result.ok]

        if as_json:
            self.stdout.write(json.dumps([result.as_dict() for result in results], indent=2, default=str))
        else:
            for result in results:
                status = "ok" if result.ok else "FAILED"
                if result.skipped:
                    status = "skipped"
                self.stdout.write(
                    f"{status:8} {result.name:28} checked {result.checked}, violations {result.total_violations}"
                    f"  ({result.description})"
                )
                for example in result.violations[:5]:
                    self.stdout.write(f"         - {example}")

        log.info("consistency_audit_finished", failed=failed, checks=len(results))
        if failed:
            sys.exit(1)

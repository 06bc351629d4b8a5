"""Compare the search index with PostgreSQL: `python manage.py check_search_drift [--repair] [--json]`."""
import json

from django.core.management.base import BaseCommand, CommandError

from catalog.search.client import SearchUnavailable
from catalog.search.drift import DriftCheck, DriftReport, check_search_drift
from catalog.search.indexer import SearchIndexError

# Product ids listed per kind of drift in the text output; --json lists all of them.
MAX_LISTED = 20


class Command(BaseCommand):
    help = (
        "List published products missing from the search index or indexed at another version, and published "
        "documents of products that are unpublished or deleted. With --repair, rewrite them from PostgreSQL and "
        "compare again. Exits with status 1 while drift remains."
    )

    def add_arguments(self, parser):
        parser.add_argument("--repair", action="store_true", help="Rewrite missing and stale documents, remove orphans.")
        parser.add_argument("--json", action="store_true", help="Print the whole report as one JSON object.")

    def handle(self, *args, **options):
        try:
            check = check_search_drift(repair=options["repair"])
        except SearchUnavailable as error:
            raise CommandError(f"{error} Run the check again once OpenSearch is up.") from error
        except SearchIndexError as error:
            raise CommandError(f"{error} The repair stopped at this batch.") from error

        if options["json"]:
            self.stdout.write(json.dumps(check.as_dict(), indent=2))
        else:
            self._write_text(check)

        remaining = check.unrepaired.drift_count
        if remaining:
            hint = "" if options["repair"] else " Run with --repair to fix it."
            raise CommandError(f"{remaining} drifted document(s) remain.{hint}", returncode=1)

    def _write_text(self, check: DriftCheck) -> None:
        self._write_report("Found", check.found)
        if check.repair is not None:
            repair = check.repair
            self.stdout.write(
                f"Repaired: {repair.indexed} rewritten, {repair.removed} removed, "
                f"{repair.availability_refreshed} availability refreshed, "
                f"{repair.rejected_older} rejected because the index holds a newer version."
            )
            self._write_report("Remaining", check.remaining)
            stale_ahead = [entry for entry in check.remaining.stale if entry.indexed_version > entry.expected_version]
            if stale_ahead:
                self.stdout.write(
                    "The index holds newer versions than PostgreSQL for some products (after a database restore?); "
                    "only `reindex_catalog` replaces them."
                )

    def _write_report(self, label: str, report: DriftReport) -> None:
        if not report.alias_exists:
            self.stdout.write(f"{label}: the alias {report.alias} does not exist; every published product is missing.")
        self.stdout.write(
            f"{label}: {report.products} published product(s), {report.documents} published document(s) in "
            f"{report.alias}; {len(report.missing)} missing, {len(report.stale)} stale, {len(report.orphans)} "
            f"orphan(s), {len(report.availability_stale)} with outdated availability."
        )
        for kind, entries in (("missing", report.missing), ("stale", report.stale), ("orphan", report.orphans)):
            for entry in entries[:MAX_LISTED]:
                self.stdout.write(
                    f"  {kind}: product {entry.product_id}, PostgreSQL version {entry.expected_version}, "
                    f"indexed version {entry.indexed_version}"
                )
            if len(entries) > MAX_LISTED:
                self.stdout.write(f"  ... and {len(entries) - MAX_LISTED} more {kind}; use --json for all of them.")

"""Import Shopify product CSV exports: `python manage.py import_shopify_csv PATH [PATH ...]`."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from catalog.importing import ImportRowError, product_import
from catalog.shopify_csv import parse_file
from commerce.errors import DomainError
from commerce.logging import get_logger

log = get_logger(__name__)


class Command(BaseCommand):
    help = (
        "Import products from Shopify product CSV exports. Each product is imported in its own "
        "transaction; unusable rows are reported as FILE:LINE: reason and skipped with their product."
    )

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+", type=Path, help="Shopify product CSV files.")
        parser.add_argument(
            "--currency",
            default=settings.CATALOG_CURRENCY,
            help="ISO 4217 currency of the prices in the files (default: CATALOG_CURRENCY, %(default)s).",
        )

    def handle(self, *args, paths: list[Path], currency: str, **options):
        currency = currency.upper()
        if len(currency) != 3 or not currency.isalpha():
            raise CommandError(f"--currency must be a three-letter ISO 4217 code, got {currency!r}.")

        counts: Counter[str] = Counter()
        for path in paths:
            if not path.is_file():
                raise CommandError(f"{path}: no such file.")
            self._import_file(path, currency, counts)

        summary = (
            f"products: {counts['created']} created, {counts['updated']} updated, "
            f"{counts['unchanged']} unchanged; variants: {counts['variants']}; "
            f"stock levels set: {counts['stock_changes']}; "
            f"skipped rows: {counts['skipped_rows']} ({counts['skipped_products']} products)"
        )
        self.stdout.write(summary)
        log.info("catalog_import_finished", **{key: counts[key] for key in sorted(counts)})

    def _import_file(self, path: Path, currency: str, counts: Counter[str]) -> None:
        log.info("catalog_import_started", path=str(path))
        try:
            parsed = parse_file(path)
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise CommandError(f"{path}: cannot read the file: {exc}") from exc

        for message in parsed.orphan_errors:
            self.stderr.write(message)
        counts["skipped_rows"] += parsed.orphan_rows

        for record in parsed.products:
            error_line, reason = record.error_line, record.error
            if reason is None:
                try:
                    outcome = product_import(record=record, currency=currency, actor=f"import_shopify_csv:{path.name}")
                except ImportRowError as exc:
                    error_line, reason = exc.line, str(exc)
                except (DomainError, DatabaseError) as exc:
                    error_line, reason = record.line, str(exc).strip().splitlines()[0]
                else:
                    counts[outcome.status] += 1
                    counts["variants"] += outcome.variants
                    counts["stock_changes"] += outcome.stock_changes
                    continue

            message = f"{path}:{error_line}: {reason}; skipped product {record.handle!r}"
            self.stderr.write(message)
            log.warning("catalog_import_row_skipped", path=str(path), line=error_line, handle=record.handle, reason=reason)
            counts["skipped_rows"] += len(record.lines)
            counts["skipped_products"] += 1

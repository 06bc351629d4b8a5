"""Rebuild the product search index: `python manage.py reindex_catalog [--batch-size N]`."""
import argparse

from django.core.management.base import BaseCommand, CommandError

from catalog.search.client import SearchUnavailable
from catalog.search.indexer import SearchIndexError
from catalog.search.reindex import reindex_catalog


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


class Command(BaseCommand):
    help = (
        "Build a fresh product search index from PostgreSQL, point the search alias at it in one atomic request, "
        "rewrite the products that changed during the build, and delete the previous index. Searches keep "
        "working throughout."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--batch-size",
            type=_positive_int,
            help="Products per bulk request. Default: the SEARCH_BATCH_SIZE setting, else 500.",
        )

    def handle(self, *args, **options):
        try:
            result = reindex_catalog(batch_size=options["batch_size"])
        except SearchUnavailable as error:
            raise CommandError(f"{error} The alias was left unchanged; run the command again once OpenSearch is up.") from error
        except SearchIndexError as error:
            raise CommandError(f"{error} The alias was left unchanged.") from error

        previous = ", ".join(result.previous_indices) or "none"
        self.stdout.write(
            f"Built {result.index}: {result.documents} published document(s), {result.tombstones} tombstone(s) "
            f"in {result.seconds:.1f} s. Previous index(es), now deleted: {previous}."
        )
        self.stdout.write(
            f"Catch-up after the swap: {result.catch_up.indexed} rewritten, {result.catch_up.removed} removed, "
            f"{result.catch_up.availability_refreshed} availability refreshed."
        )
        if result.leftover_indices:
            self.stdout.write(
                "Indexes behind no alias, left by an interrupted or a concurrent build: "
                + ", ".join(result.leftover_indices)
                + ". Delete them once no build is running."
            )

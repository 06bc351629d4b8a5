"""Generate a synthetic catalog: `python manage.py seed_catalog --products N`."""
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from catalog.seeding import seed_catalog
from commerce.logging import get_logger

log = get_logger(__name__)


class Command(BaseCommand):
    help = "Generate a deterministic synthetic catalog with bulk inserts; existing seeded products are kept."

    def add_arguments(self, parser):
        parser.add_argument("--products", type=int, required=True, help="Number of products to generate.")
        parser.add_argument("--seed", type=int, default=42, help="Random seed (default %(default)s).")
        parser.add_argument("--batch-size", type=int, default=2000, help="Products per transaction (default %(default)s).")

    def handle(self, *args, products: int, seed: int, batch_size: int, **options):
        if products < 1:
            raise CommandError(f"--products must be at least 1, got {products}.")
        if batch_size < 1:
            raise CommandError(f"--batch-size must be at least 1, got {batch_size}.")

        started = time.monotonic()
        log.info("catalog_seed_started", products=products, seed=seed)
        result = seed_catalog(products=products, seed=seed, currency=settings.CATALOG_CURRENCY, batch_size=batch_size)
        elapsed = time.monotonic() - started

        self.stdout.write(
            f"products: {result.created} created, {result.existing} already present; "
            f"variants: {result.variants}; {elapsed:.1f}s"
        )
        log.info("catalog_seed_finished", created=result.created, existing=result.existing, seconds=round(elapsed, 1))

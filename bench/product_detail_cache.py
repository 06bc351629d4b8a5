"""Measure product detail requests per second with the Redis cache and without it, side by side.

Run from the repository root while the native stack is up (make stack-up):

    .venv/bin/python bench/product_detail_cache.py [--products 200] [--seconds 5] [--rounds 2]

Both modes serve the same seeded products through Django's whole request path
(middleware, DRF, rendering), called in this process by the test client without
sockets, one request at a time. The modes alternate round by round, so that
noise from other work on the machine reaches both alike. The script creates a
database and a Redis key prefix of its own and deletes both at the end.
"""
from __future__ import annotations

import argparse
import io
import os
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "commerce.settings")
# Keeps the INFO line that django_structlog writes per request out of the measurement and the output.
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django  # noqa: E402 - the settings module must be chosen first.

django.setup()

import redis  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext, override_settings  # noqa: E402

from catalog.models import Product  # noqa: E402


@dataclass
class ModeResult:
    name: str
    requests: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    queries_per_request: int = 0

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds

    def percentile_ms(self, fraction: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000


def detail_url(handle: str) -> str:
    return f"/api/v1/products/{handle}/"


def fetch(client: Client, handle: str) -> None:
    response = client.get(detail_url(handle))
    if response.status_code != 200:
        raise SystemExit(
            f"GET {detail_url(handle)} returned {response.status_code}: {response.content[:200]!r}. "
            "Check that PostgreSQL and Redis of the native stack are up (make stack-status)."
        )


def run_round(client: Client, handles: list[str], seconds: float, result: ModeResult) -> None:
    started = time.perf_counter()
    deadline = started + seconds
    index = 0
    while time.perf_counter() < deadline:
        request_started = time.perf_counter()
        fetch(client, handles[index % len(handles)])
        result.latencies.append(time.perf_counter() - request_started)
        index += 1
    result.seconds += time.perf_counter() - started
    result.requests += index


def count_queries(client: Client, handle: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        fetch(client, handle)
    return len(queries.captured_queries)


def benchmark(*, products: int, seconds: float, rounds: int) -> None:
    call_command("seed_catalog", "--products", str(products), stdout=io.StringIO())
    handles = list(Product.objects.filter(published=True).order_by("id").values_list("handle", flat=True))
    client = Client()
    results = {"cached": ModeResult("cached"), "uncached": ModeResult("uncached")}

    with override_settings(PRODUCT_CACHE_ENABLED=True):
        # Fill the cache first, so that the cached rounds measure hits.
        for handle in handles:
            fetch(client, handle)
        results["cached"].queries_per_request = count_queries(client, handles[0])
    with override_settings(PRODUCT_CACHE_ENABLED=False):
        results["uncached"].queries_per_request = count_queries(client, handles[0])

    for _ in range(rounds):
        for name, enabled in (("cached", True), ("uncached", False)):
            with override_settings(PRODUCT_CACHE_ENABLED=enabled):
                run_round(client, handles, seconds, results[name])

    print(
        f"product detail: {len(handles)} published products, {rounds} rounds of {seconds:g} s per mode, "
        "one client in one process (Django test client, no sockets)"
    )
    print(f"{'mode':<10}{'requests':>10}{'req/s':>10}{'p50 ms':>10}{'p95 ms':>10}{'queries/req':>13}")
    for result in results.values():
        print(
            f"{result.name:<10}{result.requests:>10}{result.per_second:>10.0f}"
            f"{result.percentile_ms(0.5):>10.2f}{result.percentile_ms(0.95):>10.2f}"
            f"{result.queries_per_request:>13}"
        )
    ratio = results["cached"].per_second / results["uncached"].per_second
    print(f"cached / uncached: {ratio:.2f}x")


def delete_keys(prefix: str) -> None:
    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=200, help="Products to seed (default %(default)s).")
    parser.add_argument("--seconds", type=float, default=5.0, help="Length of one round, in seconds (default %(default)s).")
    parser.add_argument("--rounds", type=int, default=2, help="Rounds per mode, alternating (default %(default)s).")
    arguments = parser.parse_args()
    if arguments.products < 1 or arguments.seconds <= 0 or arguments.rounds < 1:
        parser.error("--products and --rounds must be at least 1 and --seconds above 0.")

    # A database of its own, so neither the development data nor a concurrent test run is touched.
    connection.settings_dict.setdefault("TEST", {})["NAME"] = f"bench_product_detail_cache_{os.getpid()}"
    original_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    prefix = f"bench-product-detail:{uuid.uuid4().hex}"
    try:
        with override_settings(PRODUCT_CACHE_KEY_PREFIX=prefix):
            benchmark(products=arguments.products, seconds=arguments.seconds, rounds=arguments.rounds)
    finally:
        delete_keys(prefix)
        connection.creation.destroy_test_db(original_name, verbosity=0)


if __name__ == "__main__":
    main()

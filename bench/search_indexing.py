"""Measure search indexing throughput: the consumer's handler path against a raw bulk load of the same documents.

Run from the repository root while the native stack is up (make stack-up):

    .venv/bin/python bench/search_indexing.py [--products 2000]

Handler path: every product.created event of the seeded catalog goes through
cdc.consumers.processing.apply_event with the search-indexer consumer, as
run_consumer applies a message after polling it. That is one transaction
with the ProcessedEvent insert, the product read from PostgreSQL and one
OpenSearch bulk request holding one document, per event. Kafka is left out,
so the number is the ceiling of one consumer process.

Raw bulk: the same documents, built before the clock starts, are loaded with
opensearchpy.helpers.bulk into a second index with the same settings and
mappings, in chunks of SEARCH_BATCH_SIZE.

Both run once, one after the other, against the same OpenSearch. The script
creates a database and an index prefix of its own and deletes both at the end.
"""
from __future__ import annotations

import argparse
import io
import os
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "commerce.settings")
# Keeps per-event log lines out of the measurement and the output.
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django  # noqa: E402 - the settings module must be chosen first.

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import override_settings  # noqa: E402
from opensearchpy import helpers  # noqa: E402

from catalog.consumers import SearchIndexerConsumer  # noqa: E402
from catalog.search.client import create_index, search_client, search_config  # noqa: E402
from catalog.search.documents import build_actions  # noqa: E402
from catalog.search.indexer import EXTERNAL  # noqa: E402
from cdc.consumers.base import Source  # noqa: E402
from cdc.consumers.processing import Outcome, apply_event  # noqa: E402
from cdc.envelope import Envelope  # noqa: E402
from commerce.models import OutboxEvent  # noqa: E402


def index_count(index: str) -> int:
    client = search_client()
    client.indices.refresh(index=index)
    return int(client.count(index=index)["count"])


def run_handler_path(envelopes: list[Envelope]) -> float:
    """Apply every envelope as the consumer does; return the elapsed seconds."""
    consumer = SearchIndexerConsumer()
    started = time.perf_counter()
    for offset, envelope in enumerate(envelopes):
        outcome = apply_event(consumer, envelope, Source(topic="bench.product", partition=0, offset=offset))
        if outcome is not Outcome.APPLIED:
            raise SystemExit(f"Event {envelope.event_id} ended as {outcome.value}, expected applied.")
    return time.perf_counter() - started


def run_raw_bulk(product_ids: list[int], index: str) -> float:
    """Bulk-load the documents of `product_ids` into `index`, built beforehand; return the elapsed seconds."""
    config = search_config()
    actions = [
        {
            "_index": index,
            "_id": str(action.product_id),
            "version": action.version,
            "version_type": EXTERNAL,
            "_source": action.document,
        }
        for start in range(0, len(product_ids), config.batch_size)
        for action in build_actions(product_ids[start : start + config.batch_size])
    ]
    started = time.perf_counter()
    indexed, errors = helpers.bulk(search_client(), actions, chunk_size=config.batch_size, request_timeout=60)
    elapsed = time.perf_counter() - started
    if errors or indexed != len(actions):
        raise SystemExit(f"Raw bulk load indexed {indexed} of {len(actions)} documents: {errors[:3]}")
    return elapsed


def benchmark(products: int) -> None:
    call_command("seed_catalog", "--products", str(products), stdout=io.StringIO())
    rows = OutboxEvent.objects.filter(event_type="product.created").order_by("id")
    envelopes = [Envelope.from_outbox(row) for row in rows]
    product_ids = [int(envelope.aggregate_id) for envelope in envelopes]
    config = search_config()
    client = search_client()
    create_index(client, config.new_index_name(), aliases={config.alias: {"is_write_index": True}})
    raw_index = f"{config.alias}-raw-bulk"
    create_index(client, raw_index)

    handler_seconds = run_handler_path(envelopes)
    raw_seconds = run_raw_bulk(product_ids, raw_index)

    handler_count, raw_count = index_count(config.alias), index_count(raw_index)
    if handler_count != raw_count or handler_count != len(envelopes):
        raise SystemExit(f"Document counts differ: handler path {handler_count}, raw bulk {raw_count}.")
    handler_rate = len(envelopes) / handler_seconds
    raw_rate = len(envelopes) / raw_seconds
    print(f"search indexing: {len(envelopes)} documents, batch size {config.batch_size}, one run each")
    print(f"{'path':<14}{'seconds':>10}{'docs/s':>10}")
    print(f"{'handler':<14}{handler_seconds:>10.2f}{handler_rate:>10.0f}")
    print(f"{'raw bulk':<14}{raw_seconds:>10.2f}{raw_rate:>10.0f}")
    print(f"raw bulk / handler: {raw_rate / handler_rate:.1f}x")


def delete_indices(prefix: str) -> None:
    client = search_client()
    for name in client.indices.get(index=f"{prefix}-*", ignore_unavailable=True):
        client.indices.delete(index=name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=2000, help="Products to seed and index (default %(default)s).")
    arguments = parser.parse_args()
    if arguments.products < 1:
        parser.error("--products must be at least 1.")

    # A database of its own, so neither the development data nor a concurrent test run is touched.
    connection.settings_dict.setdefault("TEST", {})["NAME"] = f"bench_search_indexing_{os.getpid()}"
    original_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    try:
        with override_settings(SEARCH_INDEX_PREFIX=prefix):
            try:
                benchmark(arguments.products)
            finally:
                delete_indices(prefix)
    finally:
        connection.creation.destroy_test_db(original_name, verbosity=0)


if __name__ == "__main__":
    main()

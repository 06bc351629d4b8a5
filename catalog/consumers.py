"""Kafka entry points of the catalog: the search indexer.

NOTE: `run_consumer`, `replay` and `replay_dlq` find the search-indexer only in
a process that imported this module, and nothing imports it at startup yet
(catalog's AppConfig.ready or cdc.consumers.registry.BUILTIN_MODULES would).
"""
from __future__ import annotations

from cdc.consumers.base import EventConsumer, InvalidEvent, Source
from cdc.consumers.registry import register
from cdc.envelope import Envelope
from catalog.search.indexer import WriteOutcome, index_product_change

PRODUCT_EVENT_TYPES = frozenset({"product.created", "product.updated", "product.unpublished", "product.deleted"})


def apply_product_event(envelope: Envelope) -> WriteOutcome:
    """Write the product's current document (or its tombstone) to the search index after a product event.

    The older-version rejection (409) is returned as WriteOutcome.OLDER, not
    raised, so a replayed or late event is done without a retry or a dead
    letter. Raises InvalidEvent for an event without a usable product id,
    SearchUnavailable when OpenSearch is down, and SearchIndexError when it
    rejects the document.
    """
    try:
        product_id = int(envelope.aggregate_id)
    except ValueError:
        raise InvalidEvent(
            f"{envelope.type} {envelope.event_id} has aggregate_id {envelope.aggregate_id!r}, "
            "which is not a product id."
        ) from None
    if product_id < 1 or envelope.aggregate_version < 1:
        raise InvalidEvent(
            f"{envelope.type} {envelope.event_id} has product id {product_id} and version "
            f"{envelope.aggregate_version}; both must be at least 1."
        )
    return index_product_change(product_id=product_id, event_version=envelope.aggregate_version)


@register
class SearchIndexerConsumer(EventConsumer):
    """Keep the product search index in step with the catalog.

    The framework runs `handle` inside its deduplication transaction, and this
    handler calls OpenSearch from there, which the EventConsumer docstring
    rules out for handlers. It is safe here for two reasons. The write is
    idempotent by external version, so a repeat after a rollback rewrites the
    same document or is rejected as older. And while the transaction waits,
    for at most SEARCH_WRITE_TIMEOUT_SECONDS, it locks nothing but its own
    ProcessedEvent row.

    While OpenSearch is down every event fails its attempts and is
    dead-lettered. `replay_dlq search-indexer` or the drift repair brings the
    index back up to date afterwards.
    TODO: once the framework can pause on a dependency outage (as it does for
    PostgreSQL), raise that signal here instead of filling the dead-letter topic.
    """

    name = "search-indexer"
    aggregate_types = ("product",)
    event_types = PRODUCT_EVENT_TYPES

    def handle(self, envelope: Envelope, source: Source) -> None:
        apply_product_event(envelope)

"""Fixtures and helpers shared by the search tests; this module contains no tests itself.

OpenSearch is shared with other test runs and does not roll back with the
test database, so every test gets an index prefix of its own
(SEARCH_INDEX_PREFIX=test-<8 hex>) and its indexes are deleted afterwards.
"""
from __future__ import annotations

import socket
import uuid
from decimal import Decimal
from typing import Any

import pytest
from django.db import transaction
from opensearchpy import OpenSearch
from opensearchpy.exceptions import NotFoundError

from catalog.models import Product, ProductVariant
from catalog.search.client import search_client, search_config
from catalog.search.reindex import reindex_catalog
from catalog.services import product_record_change, product_record_event
from cdc.envelope import Envelope
from commerce.models import OutboxEvent
from tests.factories import ProductFactory

SEARCH_URL = "/api/v1/search/"


@pytest.fixture
def search_prefix(settings) -> str:
    """Set SEARCH_INDEX_PREFIX to a fresh value and delete every index under it after the test."""
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    settings.SEARCH_INDEX_PREFIX = prefix
    # Built from the URL now, because the test may point OPENSEARCH_URL at a closed port.
    cleanup = OpenSearch(hosts=[settings.OPENSEARCH_URL], timeout=30, max_retries=0)
    yield prefix
    try:
        names = list(cleanup.indices.get(index=f"{prefix}-*", ignore_unavailable=True))
        for name in names:
            cleanup.indices.delete(index=name, ignore_unavailable=True)
    finally:
        cleanup.close()


@pytest.fixture
def search_index(search_prefix) -> str:
    """Build an empty index behind the alias, as a first reindex_catalog does, and return the alias."""
    reindex_catalog()
    return search_config().alias


def closed_port_url() -> str:
    """Return an http URL on a loopback port that nothing listens on, to play a stopped OpenSearch."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def refresh() -> None:
    search_client().indices.refresh(index=search_config().alias)


def indexed(product_id: int) -> dict[str, Any] | None:
    """Return the stored document of `product_id` ({_version, _source, ...}), or None."""
    try:
        return search_client().get(index=search_config().alias, id=str(product_id))
    except NotFoundError:
        return None


def alias_targets() -> list[str]:
    return sorted(search_client().indices.get_alias(name=search_config().alias))


def create_product(**kwargs) -> Product:
    """Create a product with ProductFactory and write its product.created event, as the admin does."""
    product = ProductFactory(**kwargs)
    with transaction.atomic():
        product_record_event(product_id=product.pk, event_type="product.created")
    return product


def change_price(product: Product, price: str) -> int:
    """Set every variant of `product` to `price` through the catalog services; return the new version."""
    with transaction.atomic():
        ProductVariant.objects.filter(product=product).update(price=Decimal(price))
        return product_record_change(product_id=product.pk, was_published=product.published)


def set_published(product: Product, published: bool) -> int:
    with transaction.atomic():
        was_published = Product.objects.values_list("published", flat=True).get(pk=product.pk)
        Product.objects.filter(pk=product.pk).update(published=published)
        return product_record_change(product_id=product.pk, was_published=was_published)


def product_envelopes(product_id: int) -> list[Envelope]:
    """Return the product's outbox events as Kafka envelopes, oldest first."""
    rows = OutboxEvent.objects.filter(aggregate_type="product", aggregate_id=str(product_id)).order_by("id")
    return [Envelope.from_outbox(row) for row in rows]


def search_ids(api_client, **params) -> list[int]:
    response = api_client.get(SEARCH_URL, params)
    assert response.status_code == 200, response.content
    return [hit["id"] for hit in response.json()["results"]]

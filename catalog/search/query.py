"""The storefront search query: relevance with typo tolerance, filters, pagination and facets."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from opensearchpy.exceptions import NotFoundError, TransportError

from catalog.search.client import (
    SearchIndexMissing,
    SearchUnavailable,
    error_type,
    is_unavailable,
    search_backoff_remaining,
    search_backoff_start,
    search_client,
    search_config,
)
from commerce.logging import get_logger

log = get_logger(__name__)

# Bucket edges of the price facet, applied to a product's lowest price; the last bucket is open-ended.
PRICE_FACET_EDGES = (Decimal("25"), Decimal("50"), Decimal("100"), Decimal("250"))
# Maximum number of categories in the category facet.
CATEGORY_FACET_SIZE = 50

_HIT_FIELDS = [
    "product_id", "handle", "name", "tags", "category_slug", "category_name", "category_path",
    "price_min", "price_max", "currency", "in_stock", "availability_checked_at",
]


@dataclass(frozen=True)
class SearchParams:
    q: str = ""
    category: str | None = None
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    in_stock: bool | None = None
    page: int = 1


@dataclass(frozen=True)
class SearchPage:
    total: int
    hits: list[dict[str, Any]]
    categories: list[dict[str, Any]]
    price_ranges: list[dict[str, Any]]


def search_body(params: SearchParams, *, page_size: int) -> dict[str, Any]:
    """Build the OpenSearch request body for `params`.

    The category and price filters go into post_filter, so each facet can
    ignore its own filter: with a category chosen, the category facet still
    counts the other categories, and likewise for price.
    """
    filters: list[dict[str, Any]] = [{"term": {"published": True}}]
    if params.in_stock is not None:
        filters.append({"term": {"in_stock": params.in_stock}})

    category_filter = {"term": {"category_slugs": params.category}} if params.category else None
    price_filters = []
    # A product matches a price range when any of its variants is inside it.
    if params.min_price is not None:
        price_filters.append({"range": {"price_max": {"gte": str(params.min_price)}}})
    if params.max_price is not None:
        price_filters.append({"range": {"price_min": {"lte": str(params.max_price)}}})

    query: dict[str, Any] = {"bool": {"filter": filters}}
    if params.q:
        query["bool"]["must"] = [_text_query(params.q)]

    post_filters = ([category_filter] if category_filter else []) + price_filters
    body: dict[str, Any] = {
        "query": query,
        "from": (params.page - 1) * page_size,
        "size": page_size,
        "sort": [{"_score": "desc"}, {"product_id": "asc"}],
        "track_total_hits": True,
        "version": True,
        "_source": _HIT_FIELDS,
        "aggs": {
            "categories": {
                "filter": _all_of(price_filters),
                "aggs": {
                    "slugs": {
                        "terms": {"field": "category_slug", "size": CATEGORY_FACET_SIZE},
                        "aggs": {"name": {"terms": {"field": "category_name", "size": 1}}},
                    }
                },
            },
            "price_ranges": {
                "filter": _all_of([category_filter] if category_filter else []),
                "aggs": {"ranges": {"range": {"field": "price_min", "ranges": _price_ranges()}}},
            },
        },
    }
    if post_filters:
        body["post_filter"] = _all_of(post_filters)
    return body


def search_products(params: SearchParams) -> SearchPage:
    """Run the search on the alias and return one page of hits with facets.

    Raises SearchIndexMissing when no index was ever built, and
    SearchUnavailable when OpenSearch is down or timed out, or failed within
    the last SEARCH_RETRY_AFTER_SECONDS (the process then skips it rather than
    wait for another timeout).
    """
    config = search_config()
    remaining = search_backoff_remaining()
    if remaining > 0:
        raise SearchUnavailable(f"OpenSearch failed recently; the next attempt is in {remaining:.1f} s.")
    body = search_body(params, page_size=config.page_size)
    try:
        response = _search_with_one_retry(body)
    except NotFoundError as error:
        raise SearchIndexMissing(f"The search alias {config.alias} does not exist: {error}") from error
    except TransportError as error:
        if not is_unavailable(error):
            raise
        search_backoff_start()
        log.warning("search_unavailable", opensearch_url=config.url, error=str(error))
        raise SearchUnavailable(f"OpenSearch at {config.url} is unavailable: {error}") from error
    return _page(response)


def _search_with_one_retry(body: dict[str, Any]) -> dict[str, Any]:
    """Search the alias, retrying once when the index it resolved to was deleted under the request.

    reindex_catalog deletes the old index right after the swap. A search that
    resolved the alias just before the swap can then find its index gone, and
    the retry resolves the alias again, to the new index.
    """
    config = search_config()
    client = search_client()
    for attempt in (1, 2):
        try:
            response = client.search(index=config.alias, body=body, request_timeout=config.timeout_seconds)
        except NotFoundError as error:
            if attempt == 2 or error_type(error) != "index_not_found_exception":
                raise
            continue
        shards = response.get("_shards", {})
        if shards.get("total", 0) and not shards.get("successful", 0):
            if attempt == 1:
                continue
            raise TransportError(503, "search_phase_execution_exception", {"_shards": shards})
        return response
    raise AssertionError("unreachable: the second attempt returns or raises")


def _page(response: dict[str, Any]) -> SearchPage:
    hits = []
    for hit in response["hits"]["hits"]:
        source = hit["_source"]
        category = None
        if source.get("category_slug"):
            category = {
                "slug": source["category_slug"],
                "name": source.get("category_name"),
                "path": source.get("category_path", []),
            }
        hits.append(
            {
                "id": source["product_id"],
                "handle": source["handle"],
                "name": source["name"],
                "tags": source.get("tags", []),
                "category": category,
                "price_min": source.get("price_min"),
                "price_max": source.get("price_max"),
                "currency": source.get("currency"),
                "in_stock": source.get("in_stock"),
                "availability_checked_at": source.get("availability_checked_at"),
                # The document's external version, which is the catalog version it was built from.
                "version": hit["_version"],
                "score": hit["_score"],
            }
        )

    aggregations = response["aggregations"]
    categories = [
        {
            "slug": bucket["key"],
            "name": bucket["name"]["buckets"][0]["key"] if bucket["name"]["buckets"] else None,
            "count": bucket["doc_count"],
        }
        for bucket in aggregations["categories"]["slugs"]["buckets"]
    ]
    price_ranges = [
        {
            "from": _edge(bucket.get("from")),
            "to": _edge(bucket.get("to")),
            "count": bucket["doc_count"],
        }
        for bucket in aggregations["price_ranges"]["ranges"]["buckets"]
    ]
    return SearchPage(
        total=response["hits"]["total"]["value"], hits=hits, categories=categories, price_ranges=price_ranges
    )


def _text_query(text: str) -> dict[str, Any]:
    return {
        "bool": {
            "should": [
                {
                    "multi_match": {
                        "query": text,
                        "fields": ["name^3", "tags^2", "description"],
                        "type": "best_fields",
                        "fuzziness": "AUTO",
                    }
                },
                # Rewards the words in their order in the name, over scattered fuzzy matches.
                {"match_phrase": {"name": {"query": text, "boost": 2}}},
                {"term": {"skus": {"value": text, "boost": 5}}},
            ],
            "minimum_should_match": 1,
        }
    }


def _all_of(filters: list[dict[str, Any]]) -> dict[str, Any]:
    if not filters:
        return {"match_all": {}}
    return {"bool": {"filter": filters}}


def _price_ranges() -> list[dict[str, str]]:
    ranges: list[dict[str, str]] = []
    lower = None
    for edge in PRICE_FACET_EDGES:
        ranges.append({"to": str(edge)} if lower is None else {"from": str(lower), "to": str(edge)})
        lower = edge
    ranges.append({"from": str(lower)})
    return ranges


def _edge(value: float | None) -> str | None:
    # Edges are whole amounts from PRICE_FACET_EDGES, so the float OpenSearch returns is exact.
    return None if value is None else f"{Decimal(str(value)):.2f}"

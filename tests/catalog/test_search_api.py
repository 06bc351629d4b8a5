"""GET /api/v1/search/ against the real OpenSearch: relevance, typos, filters, facets, errors and outages."""
from __future__ import annotations

import time

import pytest
from opensearchpy.exceptions import NotFoundError

from catalog.search.client import search_client
from catalog.search.indexer import index_products
from catalog.search.reindex import reindex_catalog
from tests.catalog.test_search_support import (  # noqa: F401 - fixtures are found by name
    SEARCH_URL,
    closed_port_url,
    create_product,
    refresh,
    search_ids,
    search_index,
    search_prefix,
)
from tests.factories import StockItemFactory, make_category

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop(search_index):
    """A small indexed catalog: a category tree, stock on some products, one unpublished product."""
    apparel = make_category("Apparel")
    shirts = make_category("Apparel", "Shirts")
    home = make_category("Home")
    products = {
        "shirt": create_product(title="Linen Shirt", category=shirts, prices=["30.00", "35.00"]),
        "blouse": create_product(title="Silk Blouse", category=shirts, prices=["60.00"]),
        "coat": create_product(title="Wool Coat", category=apparel, prices=["220.00"]),
        "towel": create_product(title="Bath Towel", category=home, prices=["12.00"]),
        "draft": create_product(title="Linen Draft", category=shirts, prices=["5.00"], published=False),
    }
    products["towel"].body_text = "Soft linen towel, a linen shirt's cousin."
    products["towel"].tags = ["bathroom"]
    products["towel"].save(update_fields=["body_text", "tags"])
    products["blouse"].tags = ["linen-look", "evening"]
    products["blouse"].save(update_fields=["tags"])
    StockItemFactory(sku=products["shirt"].variants.first().sku, on_hand=3)
    StockItemFactory(sku=products["coat"].variants.get().sku, on_hand=0)
    index_products([product.pk for product in products.values()])
    refresh()
    return products


def test_name_match_ranks_first(api_client, shop):
    ids = search_ids(api_client, q="linen shirt")

    assert ids[0] == shop["shirt"].pk
    assert shop["towel"].pk in ids
    assert shop["draft"].pk not in ids


def test_typo_still_matches(api_client, shop):
    assert search_ids(api_client, q="lnien shrit")[0] == shop["shirt"].pk
    assert search_ids(api_client, q="wol cot") == [shop["coat"].pk]


def test_tags_are_searched(api_client, shop):
    assert search_ids(api_client, q="evening") == [shop["blouse"].pk]
    assert search_ids(api_client, q="bathroom") == [shop["towel"].pk]


def test_sku_matches_exactly(api_client, shop):
    sku = shop["coat"].variants.get().sku

    assert search_ids(api_client, q=sku) == [shop["coat"].pk]


def test_hits_carry_indexed_version(api_client, shop):
    response = api_client.get(SEARCH_URL, {"q": "coat"})

    hit = response.json()["results"][0]
    assert hit["version"] == shop["coat"].version == 1
    assert hit["handle"] == "wool-coat"
    assert (hit["price_min"], hit["price_max"], hit["currency"]) == ("220.00", "220.00", "USD")
    assert hit["category"] == {"slug": "apparel", "name": "Apparel", "path": ["Apparel"]}
    assert hit["in_stock"] is False
    assert hit["availability_checked_at"]


def test_category_filter_includes_descendants(api_client, shop):
    ids = search_ids(api_client, category="apparel")

    assert sorted(ids) == sorted([shop["shirt"].pk, shop["blouse"].pk, shop["coat"].pk])
    assert sorted(search_ids(api_client, category="apparel-shirts")) == sorted([shop["shirt"].pk, shop["blouse"].pk])
    assert search_ids(api_client, category="no-such-category") == []


def test_price_filters_match_any_variant(api_client, shop):
    # The shirt costs 30.00 to 35.00: it overlaps 33-40 although its lowest price is below it.
    assert search_ids(api_client, min_price="33", max_price="40") == [shop["shirt"].pk]
    assert sorted(search_ids(api_client, max_price="30")) == sorted([shop["shirt"].pk, shop["towel"].pk])
    assert search_ids(api_client, min_price="200") == [shop["coat"].pk]


def test_in_stock_filter(api_client, shop):
    assert search_ids(api_client, in_stock="true") == [shop["shirt"].pk]
    assert shop["shirt"].pk not in search_ids(api_client, in_stock="false")
    assert len(search_ids(api_client, in_stock="false")) == 3


def test_facets_count_categories_and_prices(api_client, shop):
    body = api_client.get(SEARCH_URL).json()

    assert body["count"] == 4
    categories = {facet["slug"]: (facet["name"], facet["count"]) for facet in body["facets"]["categories"]}
    assert categories == {"apparel-shirts": ("Shirts", 2), "apparel": ("Apparel", 1), "home": ("Home", 1)}
    prices = [(facet["from"], facet["to"], facet["count"]) for facet in body["facets"]["price_ranges"]]
    assert prices == [
        (None, "25.00", 1),
        ("25.00", "50.00", 1),
        ("50.00", "100.00", 1),
        ("100.00", "250.00", 1),
        ("250.00", None, 0),
    ]


def test_facets_ignore_their_own_filter(api_client, shop):
    body = api_client.get(SEARCH_URL, {"category": "home"}).json()

    assert [hit["id"] for hit in body["results"]] == [shop["towel"].pk]
    # The category facet still counts every category, so a client can switch.
    assert {facet["slug"] for facet in body["facets"]["categories"]} == {"apparel-shirts", "apparel", "home"}
    # The price facet applies the category filter.
    assert [facet["count"] for facet in body["facets"]["price_ranges"]] == [1, 0, 0, 0, 0]


def test_pagination_links(api_client, search_index, settings):
    settings.SEARCH_PAGE_SIZE = 2
    products = [create_product(title=f"Plain Mug {number}", prices=["9.00"]) for number in range(5)]
    index_products([product.pk for product in products])
    refresh()

    first = api_client.get(SEARCH_URL, {"q": "mug"}).json()
    third = api_client.get(SEARCH_URL, {"q": "mug", "page": 3}).json()
    second = api_client.get(SEARCH_URL, {"q": "mug", "page": 2}).json()

    assert first["count"] == 5
    assert (first["page"], first["page_size"]) == (1, 2)
    assert first["previous"] is None
    assert first["next"] == "http://testserver/api/v1/search/?page=2&q=mug"
    assert second["previous"] == "http://testserver/api/v1/search/?q=mug"
    assert len(third["results"]) == 1
    assert third["next"] is None
    seen = [hit["id"] for page in (first, second, third) for hit in page["results"]]
    assert sorted(seen) == sorted(product.pk for product in products)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"min_price": "cheap"}, "min_price"),
        ({"max_price": "-1"}, "max_price"),
        ({"min_price": "50", "max_price": "10"}, "max_price"),
        ({"in_stock": "yes"}, "in_stock"),
        ({"page": "0"}, "page"),
        ({"page": "two"}, "page"),
        ({"page": "100000"}, "page"),
        ({"category": "not a slug"}, "category"),
        ({"q": "x" * 201}, "q"),
    ],
)
def test_bad_params_rejected(api_client, search_index, params, field):
    response = api_client.get(SEARCH_URL, params)

    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "validation_error"
    assert body["field"] == field


def test_opensearch_down_only_search_fails(api_client, shop, settings):
    settings.OPENSEARCH_URL = closed_port_url()

    response = api_client.get(SEARCH_URL, {"q": "linen"})

    assert response.status_code == 503
    assert response["Content-Type"] == "application/problem+json"
    assert response["Retry-After"] == "5"
    assert response.json()["code"] == "search_unavailable"
    assert api_client.get("/api/v1/products/").status_code == 200
    assert api_client.get("/api/v1/products/linen-shirt/").status_code == 200
    assert api_client.get("/api/v1/categories/").status_code == 200


def test_failed_search_skips_opensearch_briefly(api_client, shop, settings, monkeypatch):
    settings.SEARCH_RETRY_AFTER_SECONDS = 1
    settings.OPENSEARCH_URL = closed_port_url()
    assert api_client.get(SEARCH_URL).status_code == 503
    client = search_client()
    attempts = []
    original_search = client.search

    def counting_search(**kwargs):
        attempts.append(kwargs["index"])
        return original_search(**kwargs)

    monkeypatch.setattr(client, "search", counting_search)

    assert api_client.get(SEARCH_URL).status_code == 503
    assert attempts == []
    time.sleep(1.1)
    assert api_client.get(SEARCH_URL).status_code == 503
    assert len(attempts) == 1


def test_search_retries_vanished_index(api_client, shop, monkeypatch):
    client = search_client()
    original_search = client.search
    attempts = []

    def search_once_missing(**kwargs):
        # As when reindex_catalog deletes the old index between alias resolution and the search.
        attempts.append(kwargs["index"])
        if len(attempts) == 1:
            raise NotFoundError(404, "index_not_found_exception", {"error": {"type": "index_not_found_exception"}})
        return original_search(**kwargs)

    monkeypatch.setattr(client, "search", search_once_missing)

    assert search_ids(api_client, q="coat") == [shop["coat"].pk]
    assert len(attempts) == 2


def test_missing_index_answers_503(api_client, search_prefix):
    response = api_client.get(SEARCH_URL, {"q": "anything"})

    assert response.status_code == 503
    assert response.json()["code"] == "search_index_missing"
    assert response["Retry-After"] == "5"


def test_search_after_reindex_sees_everything(api_client, search_prefix):
    products = [create_product(title=f"Paper Lantern {number}", prices=["15.00"]) for number in range(3)]

    reindex_catalog()

    assert sorted(search_ids(api_client, q="lantern")) == sorted(product.pk for product in products)

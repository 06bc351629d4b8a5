"""GET /api/v1/products/ and /api/v1/products/{slug}/: filters, ordering, availability and query counts."""
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import ImageFactory, ProductFactory, StockItemFactory, VariantFactory, make_category

pytestmark = pytest.mark.django_db

LIST_URL = "/api/v1/products/"


def slugs(response) -> list[str]:
    return [product["slug"] for product in response.json()["results"]]


@pytest.fixture
def shop():
    """A small catalog: a category tree, published and unpublished products, and stock."""
    apparel = make_category("Apparel")
    shirts = make_category("Apparel", "Shirts")
    home = make_category("Home")

    tee = ProductFactory(title="Basic Tee", category=shirts, prices=["15.00", "18.00"])
    coat = ProductFactory(title="Wool Coat", category=apparel, prices=["120.00"])
    lamp = ProductFactory(title="Desk Lamp", category=home, prices=["45.00"])
    ProductFactory(title="Secret Draft", category=shirts, prices=["5.00"], published=False)

    tee_small, tee_large = tee.variants.order_by("position")
    StockItemFactory(sku=tee_small.sku, on_hand=4, reserved=1)
    StockItemFactory(sku=tee_large.sku, on_hand=2, reserved=2)
    StockItemFactory(sku=coat.variants.get().sku, on_hand=0)
    # The lamp has no stock row at all: it counts as zero available.
    return {"tee": tee, "coat": coat, "lamp": lamp}


def test_list_shows_published_only(api_client, shop):
    response = api_client.get(LIST_URL)

    assert response.status_code == 200
    assert response.json()["count"] == 3
    assert "secret-draft" not in slugs(response)


def test_list_paginates(api_client, shop):
    response = api_client.get(LIST_URL, {"page_size": 2, "ordering": "name"})
    body = response.json()

    assert body["count"] == 3
    assert slugs(response) == ["basic-tee", "desk-lamp"]
    assert body["next"] is not None

    second = api_client.get(LIST_URL, {"page_size": 2, "ordering": "name", "page": 2})
    assert slugs(second) == ["wool-coat"]


def test_list_filters_category_with_descendants(api_client, shop):
    response = api_client.get(LIST_URL, {"category": "apparel", "ordering": "name"})

    assert slugs(response) == ["basic-tee", "wool-coat"]


def test_list_filters_leaf_category(api_client, shop):
    response = api_client.get(LIST_URL, {"category": "apparel-shirts"})

    assert slugs(response) == ["basic-tee"]


def test_list_filters_price_range(api_client, shop):
    # The tee's variants cost 15 and 18, so a range of 16..50 still contains it.
    response = api_client.get(LIST_URL, {"min_price": "16", "max_price": "50", "ordering": "price"})

    assert slugs(response) == ["basic-tee", "desk-lamp"]


def test_list_filters_in_stock(api_client, shop):
    in_stock = api_client.get(LIST_URL, {"in_stock": "true"})
    out_of_stock = api_client.get(LIST_URL, {"in_stock": "false", "ordering": "name"})

    assert slugs(in_stock) == ["basic-tee"]
    assert slugs(out_of_stock) == ["desk-lamp", "wool-coat"]


@pytest.mark.parametrize(
    ("ordering", "expected"),
    [
        ("price", ["basic-tee", "desk-lamp", "wool-coat"]),
        ("-price", ["wool-coat", "desk-lamp", "basic-tee"]),
        ("name", ["basic-tee", "desk-lamp", "wool-coat"]),
        ("-created", ["desk-lamp", "wool-coat", "basic-tee"]),
    ],
)
def test_list_ordering(api_client, shop, ordering, expected):
    response = api_client.get(LIST_URL, {"ordering": ordering})

    assert slugs(response) == expected


def test_list_shows_available_per_variant(api_client, shop):
    response = api_client.get(LIST_URL, {"ordering": "name"})
    tee = response.json()["results"][0]

    assert [variant["available"] for variant in tee["variants"]] == [3, 0]
    assert tee["price_min"] == "15.00"
    assert tee["price_max"] == "18.00"
    assert tee["version"] == 1


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"min_price": "cheap"}, "min_price"),
        ({"max_price": "-1"}, "max_price"),
        ({"in_stock": "maybe"}, "in_stock"),
        ({"ordering": "colour"}, "ordering"),
        ({"category": "no-such-category"}, "category"),
    ],
)
def test_list_rejects_bad_filter(api_client, shop, params, field):
    response = api_client.get(LIST_URL, params)

    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "validation_error"
    assert response.json()["field"] == field


def test_list_queries_do_not_grow_with_page_size(api_client):
    for number in range(30):
        product = ProductFactory(prices=["10.00", "11.00"])
        ImageFactory(product=product)
        ImageFactory(product=product)
        for variant in product.variants.all():
            StockItemFactory(sku=variant.sku)

    with CaptureQueriesContext(connection) as small_page:
        assert api_client.get(LIST_URL, {"page_size": 2}).status_code == 200
    with CaptureQueriesContext(connection) as large_page:
        assert api_client.get(LIST_URL, {"page_size": 30}).status_code == 200

    assert len(large_page.captured_queries) == len(small_page.captured_queries)
    # count, page, variants, images, stock: pinned so a new N+1 shows up here first.
    assert len(large_page.captured_queries) == 5


def test_detail_shows_variants_images_and_version(api_client, shop):
    tee = shop["tee"]
    ImageFactory(product=tee, src="https://images.example.test/tee-front.jpg", position=1, alt_text="Front")
    variant = tee.variants.order_by("position").first()
    variant.option1_name, variant.option1_value = "Size", "S"
    variant.save()

    response = api_client.get(f"{LIST_URL}basic-tee/")
    body = response.json()

    assert response.status_code == 200
    assert body["slug"] == "basic-tee"
    assert body["version"] == 1
    assert body["currency"] == "USD"
    assert body["images"] == [{"src": "https://images.example.test/tee-front.jpg", "position": 1, "alt_text": "Front"}]
    assert body["options"] == [{"name": "Size", "values": ["S"]}]
    assert body["variants"][0]["options"] == [{"name": "Size", "value": "S"}]
    assert body["variants"][0]["price"] == "15.00"
    assert body["variants"][0]["available"] == 3
    assert body["body_text"] == "A product."


def test_detail_unknown_slug_is_problem_404(api_client, shop):
    response = api_client.get(f"{LIST_URL}no-such-thing/")

    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "not_found"


def test_detail_unpublished_is_404(api_client, shop):
    response = api_client.get(f"{LIST_URL}secret-draft/")

    assert response.status_code == 404


def test_detail_query_count_fixed(api_client, shop):
    for _ in range(5):
        VariantFactory(product=shop["tee"], price=Decimal("20.00"))

    with CaptureQueriesContext(connection) as queries:
        api_client.get(f"{LIST_URL}basic-tee/")

    # product, variants, images, stock
    assert len(queries.captured_queries) == 4


def test_categories_list_tree(api_client, shop):
    response = api_client.get("/api/v1/categories/")

    assert response.status_code == 200
    assert response.json() == [
        {"slug": "apparel", "name": "Apparel", "depth": 1, "parent": None},
        {"slug": "apparel-shirts", "name": "Shirts", "depth": 2, "parent": "apparel"},
        {"slug": "home", "name": "Home", "depth": 1, "parent": None},
    ]

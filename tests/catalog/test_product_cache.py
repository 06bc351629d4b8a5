"""Product detail cache against the real Redis and PostgreSQL: keys, coalescing, outages and HTTP validators.

Every test stores its keys under a prefix of its own and deletes them at the
end, because other runs share the Redis server.
"""
from __future__ import annotations

import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
import redis
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from prometheus_client import REGISTRY
from rest_framework.test import APIClient

from catalog import cache as product_cache
from catalog.cache import CacheConfig, invalidate_product, invalidate_product_after_commit
from catalog.models import Product, ProductVariant
from catalog.services import product_bump_version, product_delete, product_record_change
from inventory.models import StockItem
from tests.factories import ProductFactory, StockItemFactory
from tests.services import closed_port

pytestmark = pytest.mark.django_db

THREADS = 40


def detail_url(handle: str) -> str:
    return f"/api/v1/products/{handle}/"


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def reads(result: str) -> float:
    return metric("product_detail_cache_reads_total", result=result)


def redis_unavailable_events(caplog) -> list[dict]:
    return [
        record.msg
        for record in caplog.records
        if isinstance(record.msg, dict) and record.msg.get("event") == "product_cache_redis_unavailable"
    ]


class LoadRecorder:
    """Stand-in for catalog.cache._load_from_database that counts calls, optionally slowly."""

    def __init__(self, original) -> None:
        self.original = original
        self.delay_seconds = 0.0
        self.calls = 0
        self.max_in_progress = 0
        self._in_progress = 0
        self._lock = threading.Lock()

    def __call__(self, handle: str):
        with self._lock:
            self.calls += 1
            self._in_progress += 1
            self.max_in_progress = max(self.max_in_progress, self._in_progress)
        try:
            if self.delay_seconds:
                time.sleep(self.delay_seconds)
            return self.original(handle)
        finally:
            with self._lock:
                self._in_progress -= 1


@pytest.fixture
def redis_client():
    client = redis.Redis.from_url(django_settings.REDIS_URL)
    yield client
    client.close()


@pytest.fixture(autouse=True)
def cache_prefix(settings, redis_client) -> str:
    prefix = f"test-product-cache:{uuid.uuid4().hex}"
    settings.PRODUCT_CACHE_KEY_PREFIX = prefix
    yield prefix
    keys = list(redis_client.scan_iter(match=f"{prefix}:*"))
    if keys:
        redis_client.delete(*keys)


@pytest.fixture
def loads(monkeypatch) -> LoadRecorder:
    recorder = LoadRecorder(product_cache._load_from_database)
    monkeypatch.setattr(product_cache, "_load_from_database", recorder)
    return recorder


@pytest.fixture
def tee() -> Product:
    product = ProductFactory(title="Basic Tee", prices=["15.00", "18.00"])
    small, large = product.variants.order_by("position")
    StockItemFactory(sku=small.sku, on_hand=4, reserved=1)
    StockItemFactory(sku=large.sku, on_hand=2, reserved=0)
    return product


def cache_keys(redis_client, prefix: str) -> set[str]:
    return {key.decode() for key in redis_client.scan_iter(match=f"{prefix}:*")}


def flush_prefix(redis_client, prefix: str) -> None:
    keys = list(redis_client.scan_iter(match=f"{prefix}:*"))
    if keys:
        redis_client.delete(*keys)


def change_price(product: Product, price: str) -> int:
    """Edit the first variant's price the way the admin and the importer do: one transaction with the version bump."""
    with transaction.atomic():
        ProductVariant.objects.filter(product=product, position=1).update(price=Decimal(price))
        return product_record_change(product_id=product.pk, was_published=True)


def set_published(product: Product, published: bool) -> int:
    with transaction.atomic():
        Product.objects.filter(pk=product.pk).update(published=published)
        return product_record_change(product_id=product.pk, was_published=not published)


# --- hits, keys and TTL -------------------------------------------------------


def test_second_request_served_from_cache(api_client, tee, loads):
    first = api_client.get(detail_url("basic-tee"))

    with CaptureQueriesContext(connection) as queries:
        second = api_client.get(detail_url("basic-tee"))

    assert first.status_code == 200
    assert second.status_code == 200
    assert second.json() == first.json()
    assert loads.calls == 1
    # A hit reads only the stock counters from PostgreSQL.
    assert len(queries.captured_queries) == 1
    assert '"inventory_stockitem"' in queries.captured_queries[0]["sql"]


def test_cached_body_equals_database_body(api_client, tee, settings):
    settings.PRODUCT_CACHE_ENABLED = False
    uncached = api_client.get(detail_url("basic-tee")).json()

    settings.PRODUCT_CACHE_ENABLED = True
    rebuilt = api_client.get(detail_url("basic-tee")).json()
    hit = api_client.get(detail_url("basic-tee")).json()

    assert rebuilt == uncached
    assert hit == uncached
    assert [variant["price"] for variant in hit["variants"]] == ["15.00", "18.00"]
    assert [variant["available"] for variant in hit["variants"]] == [3, 2]


def test_keys_include_version(api_client, tee, redis_client, cache_prefix):
    api_client.get(detail_url("basic-tee"))

    keys = cache_keys(redis_client, cache_prefix)
    assert f"{cache_prefix}:product:{tee.pk}:v1" in keys
    assert f"{cache_prefix}:slug:basic-tee" in keys
    pointer = json.loads(redis_client.get(f"{cache_prefix}:slug:basic-tee"))
    assert pointer["id"] == tee.pk
    assert pointer["version"] == 1
    body = json.loads(redis_client.get(f"{cache_prefix}:product:{tee.pk}:v1"))
    # Availability is merged per request, never stored.
    assert all("available" not in variant for variant in body["variants"])
    assert f"{cache_prefix}:slug:basic-tee:lock" not in keys


def test_ttl_has_jitter(api_client, settings, redis_client, cache_prefix):
    settings.PRODUCT_CACHE_TTL_SECONDS = 100
    settings.PRODUCT_CACHE_TTL_JITTER = 0.1
    settings.PRODUCT_CACHE_STALE_SECONDS = 20
    products = [ProductFactory() for _ in range(20)]

    for product in products:
        assert api_client.get(detail_url(product.handle)).status_code == 200

    lifetimes = [redis_client.pttl(f"{cache_prefix}:product:{product.pk}:v1") for product in products]
    # Fresh for 90..110 s, then kept 20 s more as a stale copy.
    assert min(lifetimes) >= 109_000
    assert max(lifetimes) <= 130_000
    assert max(lifetimes) - min(lifetimes) > 1_000


# --- freshness after changes ----------------------------------------------------


def test_stock_change_shows_without_version_bump(api_client, tee, loads):
    before = api_client.get(detail_url("basic-tee"))
    small = tee.variants.get(position=1)
    StockItem.objects.filter(sku=small.sku).update(on_hand=9)

    after = api_client.get(detail_url("basic-tee"))

    assert [variant["available"] for variant in before.json()["variants"]] == [3, 2]
    assert [variant["available"] for variant in after.json()["variants"]] == [8, 2]
    assert after.json()["version"] == before.json()["version"]
    assert after["ETag"] != before["ETag"]
    assert loads.calls == 1


def test_price_change_shows_on_next_request(
    api_client, tee, redis_client, cache_prefix, django_capture_on_commit_callbacks
):
    assert api_client.get(detail_url("basic-tee")).json()["variants"][0]["price"] == "15.00"

    with django_capture_on_commit_callbacks(execute=True):
        version = change_price(tee, "19.00")
    response = api_client.get(detail_url("basic-tee"))

    assert version == 2
    assert response.json()["version"] == 2
    assert response.json()["variants"][0]["price"] == "19.00"
    assert response.json()["price_min"] == "18.00"
    keys = cache_keys(redis_client, cache_prefix)
    assert f"{cache_prefix}:product:{tee.pk}:v1" not in keys
    assert f"{cache_prefix}:product:{tee.pk}:v2" in keys


def test_rolled_back_change_invalidates_nothing(
    api_client, tee, redis_client, cache_prefix, django_capture_on_commit_callbacks
):
    api_client.get(detail_url("basic-tee"))

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            change_price(tee, "19.00")
            raise RuntimeError("abort the edit")

    assert callbacks == []
    assert f"{cache_prefix}:product:{tee.pk}:v1" in cache_keys(redis_client, cache_prefix)
    assert api_client.get(detail_url("basic-tee")).json()["variants"][0]["price"] == "15.00"


def test_invalidate_product_drops_old_keys(api_client, tee, redis_client, cache_prefix):
    api_client.get(detail_url("basic-tee"))
    # A version bump without the in-process hook, as when only the event consumer would see it.
    version = product_bump_version(product_id=tee.pk)

    deleted = invalidate_product(tee.pk, version)

    keys = cache_keys(redis_client, cache_prefix)
    assert deleted == 2
    assert f"{cache_prefix}:product:{tee.pk}:v1" not in keys
    assert f"{cache_prefix}:slug:basic-tee" not in keys
    assert redis_client.smembers(f"{cache_prefix}:product:{tee.pk}:keys") == set()
    assert api_client.get(detail_url("basic-tee")).json()["version"] == 2


def test_invalidate_product_by_handle(api_client, tee, redis_client, cache_prefix):
    api_client.get(detail_url("basic-tee"))
    version = product_bump_version(product_id=tee.pk)

    deleted = invalidate_product("basic-tee", version)

    assert deleted == 2
    assert f"{cache_prefix}:slug:basic-tee" not in cache_keys(redis_client, cache_prefix)
    assert invalidate_product("no-such-handle", 1) == 0


def test_invalidate_product_ignores_older_version(api_client, tee, redis_client, cache_prefix, loads):
    product_bump_version(product_id=tee.pk)
    api_client.get(detail_url("basic-tee"))

    # Replayed or reordered events name older versions, and the newer entry stays.
    assert invalidate_product(tee.pk, 1) == 0
    assert invalidate_product(tee.pk, 2) == 0
    assert api_client.get(detail_url("basic-tee")).json()["version"] == 2
    assert loads.calls == 1
    assert redis_client.get(f"{cache_prefix}:product:{tee.pk}:floor") == b"2"


def test_invalidate_product_rejects_bool():
    with pytest.raises(TypeError):
        invalidate_product(True, 1)


def test_rebuild_of_older_version_not_stored(api_client, tee, loads, django_capture_on_commit_callbacks):
    read_before_change = loads.original

    def load_then_change(handle: str):
        # The rebuild has read version 1 when the edit commits and invalidates.
        snapshot = read_before_change(handle)
        if loads.calls == 1:
            with django_capture_on_commit_callbacks(execute=True):
                change_price(tee, "21.00")
        return snapshot

    loads.original = load_then_change

    first = api_client.get(detail_url("basic-tee"))
    second = api_client.get(detail_url("basic-tee"))

    assert first.json()["version"] == 1
    assert second.json()["version"] == 2
    assert second.json()["variants"][0]["price"] == "21.00"
    assert loads.calls == 2


def test_flush_keeps_responses_correct(api_client, tee, redis_client, cache_prefix, django_capture_on_commit_callbacks):
    lamp = ProductFactory(title="Desk Lamp", prices=["45.00"])
    expected = {handle: api_client.get(detail_url(handle)).json() for handle in ("basic-tee", "desk-lamp")}

    flush_prefix(redis_client, cache_prefix)

    for handle, body in expected.items():
        assert api_client.get(detail_url(handle)).json() == body

    flush_prefix(redis_client, cache_prefix)
    with django_capture_on_commit_callbacks(execute=True):
        change_price(lamp, "49.00")
    flush_prefix(redis_client, cache_prefix)

    assert api_client.get(detail_url("desk-lamp")).json()["variants"][0]["price"] == "49.00"
    assert api_client.get(detail_url("basic-tee")).json() == expected["basic-tee"]


# --- missing, unpublished and deleted products --------------------------------------


def test_unknown_slug_cached_briefly(api_client, loads, redis_client, cache_prefix):
    first = api_client.get(detail_url("no-such-thing"))
    second = api_client.get(detail_url("no-such-thing"))

    assert first.status_code == 404
    assert first["Content-Type"] == "application/problem+json"
    assert second.status_code == 404
    assert loads.calls == 1
    assert redis_client.pttl(f"{cache_prefix}:slug:no-such-thing") <= 5_000


def test_republish_shows_at_once(api_client, tee, loads, django_capture_on_commit_callbacks):
    api_client.get(detail_url("basic-tee"))

    with django_capture_on_commit_callbacks(execute=True):
        set_published(tee, False)
    after_unpublish = api_client.get(detail_url("basic-tee"))
    with django_capture_on_commit_callbacks(execute=True):
        set_published(tee, True)
    after_publish = api_client.get(detail_url("basic-tee"))

    assert after_unpublish.status_code == 404
    assert after_publish.status_code == 200
    assert after_publish.json()["version"] == 3
    assert loads.calls == 3


def test_deleted_products_leave_cache(api_client, redis_client, cache_prefix, django_capture_on_commit_callbacks):
    products = [ProductFactory(prices=["5.00"]) for _ in range(3)]
    for product in products:
        api_client.get(detail_url(product.handle))

    # One transaction deletes several products, so each on_commit call must carry its own id.
    with django_capture_on_commit_callbacks(execute=True) as callbacks, transaction.atomic():
        for product in products:
            product_delete(product_id=product.pk)

    assert len(callbacks) == 3
    keys = cache_keys(redis_client, cache_prefix)
    for product in products:
        assert f"{cache_prefix}:slug:{product.handle}" not in keys
        assert f"{cache_prefix}:product:{product.pk}:v1" not in keys
        assert api_client.get(detail_url(product.handle)).status_code == 404


# --- coalescing and the rebuild lock ---------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_concurrent_misses_rebuild_once(settings, loads):
    ProductFactory(title="Cold Product", prices=["30.00", "35.00"])
    # A slow rebuild keeps the key cold while the first wave of requests arrives,
    # and the long wait keeps a busy machine from sending waiters to the fallback.
    loads.delay_seconds = 0.3
    settings.PRODUCT_CACHE_REBUILD_WAIT_SECONDS = 10
    product_queries = []
    queries_lock = threading.Lock()

    def count_product_queries(execute, sql, params, many, context):
        if 'FROM "catalog_product"' in sql:
            with queries_lock:
                product_queries.append(sql)
        return execute(sql, params, many, context)

    def fetch(_: int):
        try:
            with connection.execute_wrapper(count_product_queries):
                response = APIClient().get(detail_url("cold-product"))
            return response.status_code, response.json()
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        results = list(pool.map(fetch, range(200)))

    statuses = [status for status, _ in results]
    bodies = {json.dumps(body, sort_keys=True) for _, body in results}
    assert statuses == [200] * 200
    assert len(bodies) == 1
    assert loads.calls == 1
    assert len(product_queries) == 1


def test_dead_rebuilder_lock_expires(api_client, tee, settings, loads, redis_client, cache_prefix):
    settings.PRODUCT_CACHE_LOCK_TTL_SECONDS = 0.3
    settings.PRODUCT_CACHE_REBUILD_WAIT_SECONDS = 0.05
    lock_key = f"{cache_prefix}:slug:basic-tee:lock"
    # A rebuilder that took the lock and died before releasing it.
    assert redis_client.set(lock_key, "dead-rebuilder", nx=True, px=300)

    during = api_client.get(detail_url("basic-tee"))

    assert during.status_code == 200
    assert redis_client.get(lock_key) == b"dead-rebuilder"
    assert f"{cache_prefix}:slug:basic-tee" not in cache_keys(redis_client, cache_prefix)

    time.sleep(0.35)
    after = api_client.get(detail_url("basic-tee"))
    hit = api_client.get(detail_url("basic-tee"))

    assert after.status_code == 200
    assert hit.status_code == 200
    assert f"{cache_prefix}:slug:basic-tee" in cache_keys(redis_client, cache_prefix)
    assert redis_client.exists(lock_key) == 0
    # One read while the lock was held, one rebuild after it expired, then a hit.
    assert loads.calls == 2


def test_waiter_takes_over_expired_lock(api_client, tee, settings, loads, redis_client, cache_prefix):
    settings.PRODUCT_CACHE_REBUILD_WAIT_SECONDS = 2
    redis_client.set(f"{cache_prefix}:slug:basic-tee:lock", "dead-rebuilder", px=200)
    fallbacks_before = reads("fallback")

    response = api_client.get(detail_url("basic-tee"))

    assert response.status_code == 200
    assert loads.calls == 1
    assert reads("fallback") == fallbacks_before
    assert f"{cache_prefix}:slug:basic-tee" in cache_keys(redis_client, cache_prefix)


def test_stale_copy_served_while_rebuilding(api_client, tee, settings, loads, redis_client, cache_prefix):
    settings.PRODUCT_CACHE_TTL_SECONDS = 0.2
    settings.PRODUCT_CACHE_TTL_JITTER = 0
    settings.PRODUCT_CACHE_STALE_SECONDS = 60
    first = api_client.get(detail_url("basic-tee"))
    time.sleep(0.3)
    lock_key = f"{cache_prefix}:slug:basic-tee:lock"
    redis_client.set(lock_key, "another-rebuilder", px=5_000)
    stale_before = reads("stale")

    stale = api_client.get(detail_url("basic-tee"))

    assert stale.status_code == 200
    assert stale.json() == first.json()
    assert loads.calls == 1
    assert reads("stale") == stale_before + 1

    redis_client.delete(lock_key)
    refreshed = api_client.get(detail_url("basic-tee"))

    assert refreshed.status_code == 200
    assert loads.calls == 2


# --- Redis unavailable ---------------------------------------------------------------


def test_redis_down_reads_database(api_client, tee, settings, loads, caplog):
    cached = api_client.get(detail_url("basic-tee"))
    settings.PRODUCT_CACHE_REDIS_URL = f"redis://127.0.0.1:{closed_port()}/0"
    errors_before = metric("product_detail_cache_redis_errors_total", operation="read")
    fallbacks_before = reads("fallback")

    responses = [api_client.get(detail_url("basic-tee")) for _ in range(3)]

    for response in responses:
        assert response.status_code == 200
        assert response.json() == cached.json()
        assert response["ETag"] == cached["ETag"]
    assert reads("fallback") == fallbacks_before + 3
    # After one failure the process skips Redis for PRODUCT_CACHE_REDIS_RETRY_SECONDS.
    assert metric("product_detail_cache_redis_errors_total", operation="read") == errors_before + 1
    events = redis_unavailable_events(caplog)
    assert len(events) == 1
    assert events[0]["operation"] == "read"
    assert loads.calls == 4


def test_redis_down_log_is_rate_limited(api_client, tee, settings, caplog):
    settings.PRODUCT_CACHE_REDIS_URL = f"redis://127.0.0.1:{closed_port()}/0"
    settings.PRODUCT_CACHE_REDIS_RETRY_SECONDS = 0
    errors_before = metric("product_detail_cache_redis_errors_total", operation="read")

    for _ in range(5):
        assert api_client.get(detail_url("basic-tee")).status_code == 200

    assert metric("product_detail_cache_redis_errors_total", operation="read") == errors_before + 5
    assert len(redis_unavailable_events(caplog)) == 1


def test_unknown_slug_with_redis_down_is_404(api_client, settings):
    settings.PRODUCT_CACHE_REDIS_URL = f"redis://127.0.0.1:{closed_port()}/0"

    response = api_client.get(detail_url("no-such-thing"))

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


@pytest.mark.django_db(transaction=True)
def test_redis_down_fallback_is_bounded(settings, loads):
    ProductFactory(title="Busy Product", prices=["12.00"])
    settings.PRODUCT_CACHE_REDIS_URL = f"redis://127.0.0.1:{closed_port()}/0"
    settings.PRODUCT_CACHE_FALLBACK_CONCURRENCY = 2
    settings.PRODUCT_CACHE_FALLBACK_WAIT_SECONDS = 0.05
    loads.delay_seconds = 0.5
    start = threading.Barrier(12)

    def fetch(_: int):
        try:
            start.wait(timeout=10)
            return APIClient().get(detail_url("busy-product"))
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=12) as pool:
        responses = list(pool.map(fetch, range(12)))

    statuses = [response.status_code for response in responses]
    rejected = [response for response in responses if response.status_code == 503]
    assert set(statuses) <= {200, 503}
    assert statuses.count(200) >= 2
    assert rejected
    assert loads.max_in_progress <= 2
    for response in rejected:
        assert response["Content-Type"] == "application/problem+json"
        assert response["Retry-After"] == "2"
        assert response.json()["code"] == "product_cache_fallback_full"


def test_invalidate_after_commit_tolerates_outage(tee, settings):
    settings.PRODUCT_CACHE_REDIS_URL = f"redis://127.0.0.1:{closed_port()}/0"

    invalidate_product_after_commit(product_id=tee.pk, version=2)

    with pytest.raises(redis.RedisError):
        invalidate_product(tee.pk, 2)


def test_disabled_cache_reads_database(api_client, tee, settings, loads, redis_client, cache_prefix):
    settings.PRODUCT_CACHE_ENABLED = False

    api_client.get(detail_url("basic-tee"))
    api_client.get(detail_url("basic-tee"))

    assert loads.calls == 2
    assert cache_keys(redis_client, cache_prefix) == set()


def test_invalid_setting_is_reported(settings):
    settings.PRODUCT_CACHE_TTL_JITTER = 1.5
    settings.PRODUCT_CACHE_FALLBACK_CONCURRENCY = 0

    with pytest.raises(ImproperlyConfigured, match="PRODUCT_CACHE_TTL_JITTER.*PRODUCT_CACHE_FALLBACK_CONCURRENCY"):
        CacheConfig.from_settings()


# --- HTTP validators -----------------------------------------------------------------


def test_detail_sends_etag_and_cache_control(api_client, tee):
    response = api_client.get(detail_url("basic-tee"))

    assert response["ETag"].startswith(f'W/"{tee.pk}-1-')
    assert response["Cache-Control"] == "public, max-age=30, stale-while-revalidate=30"
    # A shared cache stores one copy for every visitor only without Vary: Cookie.
    assert "Cookie" not in response.get("Vary", "")


def test_if_none_match_returns_304(api_client, tee, loads):
    etag = api_client.get(detail_url("basic-tee"))["ETag"]

    response = api_client.get(detail_url("basic-tee"), HTTP_IF_NONE_MATCH=etag)

    assert response.status_code == 304
    assert response.content == b""
    assert response["ETag"] == etag
    assert response["Cache-Control"] == "public, max-age=30, stale-while-revalidate=30"
    assert loads.calls == 1


@pytest.mark.parametrize(
    "header",
    [
        "{strong}",
        '"something-else", {weak}',
        "*",
    ],
)
def test_if_none_match_uses_weak_comparison(api_client, tee, header):
    etag = api_client.get(detail_url("basic-tee"))["ETag"]
    strong = etag.removeprefix("W/")

    response = api_client.get(detail_url("basic-tee"), HTTP_IF_NONE_MATCH=header.format(strong=strong, weak=etag))

    assert response.status_code == 304


def test_old_etag_returns_body(api_client, tee, django_capture_on_commit_callbacks):
    old_etag = api_client.get(detail_url("basic-tee"))["ETag"]
    with django_capture_on_commit_callbacks(execute=True):
        change_price(tee, "16.00")

    response = api_client.get(detail_url("basic-tee"), HTTP_IF_NONE_MATCH=old_etag)

    assert response.status_code == 200
    assert response["ETag"] != old_etag
    assert response.json()["variants"][0]["price"] == "16.00"


def test_etag_differs_after_handle_reuse(api_client, django_capture_on_commit_callbacks):
    # Same handle, version, SKU and stock, so only the product id distinguishes the two.
    first = ProductFactory(title="Reused Handle")
    first.variants.update(sku="REUSED-1")
    first_etag = api_client.get(detail_url("reused-handle"))["ETag"]
    with django_capture_on_commit_callbacks(execute=True):
        product_delete(product_id=first.pk)
    second = ProductFactory(title="Reused Handle")
    second.variants.update(sku="REUSED-1")

    response = api_client.get(detail_url("reused-handle"))

    assert response.status_code == 200
    assert response["ETag"] != first_etag
    assert response["ETag"].startswith(f'W/"{second.pk}-1-')

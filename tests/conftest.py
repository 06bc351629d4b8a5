"""Fixtures shared by the whole suite; every test runs against the real native stack."""
from __future__ import annotations

import pytest
from rest_framework.test import APIClient


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture(autouse=True)
def product_cache_namespace(settings):
    """Give each test its own product-cache key prefix.

    Test databases roll back but Redis does not, so without this a body cached
    by an earlier test would be served for a product with the same handle.
    """
    import uuid

    import redis

    prefix = f"test-product-detail:{uuid.uuid4().hex}"
    settings.PRODUCT_CACHE_KEY_PREFIX = prefix
    # Read the URL before the test body can point REDIS_URL at a closed port.
    client = redis.Redis.from_url(settings.REDIS_URL)
    yield
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*"))
        if keys:
            client.delete(*keys)
    except redis.RedisError:
        # A test that stopped Redis leaves nothing to clean up.
        pass
    finally:
        client.close()

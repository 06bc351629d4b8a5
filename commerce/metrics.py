"""Prometheus metrics of the web process, registered in prometheus_client's default registry.

Each process counts on its own. TODO: nothing serves these yet. Exposing them
needs a /metrics view and, under gunicorn with several workers, the client's
multiprocess mode (PROMETHEUS_MULTIPROC_DIR), so that one scrape sums every worker.
"""
from prometheus_client import Counter, Gauge

PRODUCT_CACHE_READS = Counter(
    "product_detail_cache_reads",
    "Product detail reads by outcome: hit, stale, rebuilt, coalesced, fallback, rejected or disabled.",
    ["result"],
)

PRODUCT_CACHE_REDIS_ERRORS = Counter(
    "product_detail_cache_redis_errors",
    "Redis commands of the product detail cache that failed, by operation.",
    ["operation"],
)

PRODUCT_CACHE_FALLBACK_IN_PROGRESS = Gauge(
    "product_detail_cache_fallback_in_progress",
    "Product detail reads that are loading from PostgreSQL because the cache could not answer.",
)

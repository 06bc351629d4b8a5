"""Product detail read model in Redis: versioned entries, coalesced rebuilds and a bounded database fallback.

PostgreSQL stays the source of truth. Keys live under PRODUCT_CACHE_KEY_PREFIX:

- ``slug:<handle>``: a pointer with the product id, version and freshness deadline,
  or a short-lived marker that no published product has this handle.
- ``product:<id>:v<version>``: the detail body at that version, without stock
  availability, because stock changes without a version bump and is read per request.
- ``product:<id>:keys``: the pointer and body keys written for the product, for invalidation.
- ``product:<id>:floor``: the lowest version a rebuild may still store, set by invalidation.
- ``slug:<handle>:lock``: the rebuild lock (SET NX PX with a random token).

NOTE: the invalidation script reads keys that it finds in a set rather than in
KEYS, so the cache needs one Redis server and does not work on Redis Cluster.
"""
from __future__ import annotations

import json
import random
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

import redis
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry
from rest_framework.utils.encoders import JSONEncoder

from catalog.api.serializers import ProductDetailSerializer
from catalog.models import Product
from catalog.selectors import published_products
from commerce.errors import ServiceUnavailableError
from commerce.logging import get_logger
from commerce.metrics import PRODUCT_CACHE_FALLBACK_IN_PROGRESS, PRODUCT_CACHE_READS, PRODUCT_CACHE_REDIS_ERRORS
from inventory.selectors import availability_by_sku

log = get_logger(__name__)

# How often a request that lost the lock race checks whether the rebuild has finished.
_REBUILD_POLL_SECONDS = 0.02
# Retry-After of the 503 sent when the database fallback has no free slot.
_FALLBACK_RETRY_AFTER_SECONDS = 2
# One warning per interval and process keeps an outage visible without a line per request.
_OUTAGE_LOG_INTERVAL_SECONDS = 10.0

# Store a pointer (and a body, unless ARGV[4] is empty) unless invalidation has set a
# higher floor or the pointer already contains a newer version of the same product.
# KEYS: pointer, body, key set, floor. ARGV: product id, version, pointer JSON, body JSON, TTL in ms.
_STORE_SCRIPT = """
local product_id = tonumber(ARGV[1])
local version = tonumber(ARGV[2])
local floor = tonumber(redis.call('GET', KEYS[4]) or '0')
if version < floor then
  return 0
end
local current = redis.call('GET', KEYS[1])
if current then
  local pointer = cjson.decode(current)
  if tonumber(pointer.id) == product_id and tonumber(pointer.version) > version then
    return 0
  end
end
local ttl = tonumber(ARGV[5])
redis.call('SET', KEYS[1], ARGV[3], 'PX', ttl)
if ARGV[4] ~= '' then
  redis.call('SET', KEYS[2], ARGV[4], 'PX', ttl)
end
if product_id ~= 0 then
  redis.call('SADD', KEYS[3], KEYS[1])
  if ARGV[4] ~= '' then
    redis.call('SADD', KEYS[3], KEYS[2])
  end
  if redis.call('PTTL', KEYS[3]) < ttl then
    redis.call('PEXPIRE', KEYS[3], ttl)
  end
end
return 1
"""

# Raise the floor to ARGV[2] and delete every body and pointer of the product below it.
# Pointers that now name another product (a handle moved) are only dropped from the set.
# KEYS: key set, floor. ARGV: product id, version, floor TTL in ms. Returns the keys deleted.
_INVALIDATE_SCRIPT = """
local product_id = tonumber(ARGV[1])
local floor = math.max(tonumber(ARGV[2]), tonumber(redis.call('GET', KEYS[2]) or '0'))
redis.call('SET', KEYS[2], floor, 'PX', ARGV[3])
local deleted = 0
for _, key in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local forget = false
  local stale = false
  local body_version = string.match(key, ':v(%d+)$')
  if body_version then
    forget = redis.call('EXISTS', key) == 0
    stale = tonumber(body_version) < floor
  else
    local value = redis.call('GET', key)
    if not value then
      forget = true
    else
      local pointer = cjson.decode(value)
      if tonumber(pointer.id) ~= product_id then
        forget = true
      else
        stale = tonumber(pointer.version) < floor
      end
    end
  end
  if stale then
    deleted = deleted + redis.call('DEL', key)
    forget = true
  end
  if forget then
    redis.call('SREM', KEYS[1], key)
  end
end
return deleted
"""

# Delete the lock only while it still contains our token, because a rebuild that outlived
# the lock TTL must not release the lock of the request that took over.
_RELEASE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


@dataclass(frozen=True)
class ProductDetail:
    """A product detail response body, with fresh availability, and the product version it shows."""

    product_id: int
    version: int
    body: dict[str, Any]


@dataclass(frozen=True)
class _Snapshot:
    """A product's detail body as JSON without availability, or None when no published product has the handle.

    For a missing product, `product_id` and `version` name the unpublished row
    with that handle, or are 0 when there is no row at all.
    """

    product_id: int
    version: int
    body_json: str | None


@dataclass(frozen=True)
class _Entry:
    snapshot: _Snapshot
    fresh_until: float

    def is_fresh(self) -> bool:
        return time.time() < self.fresh_until


@dataclass(frozen=True)
class CacheConfig:
    """Product cache settings, read once per process and again whenever a test overrides one."""

    enabled: bool
    redis_url: str
    key_prefix: str
    ttl_seconds: float
    ttl_jitter: float
    stale_seconds: float
    missing_ttl_seconds: float
    lock_ttl_seconds: float
    rebuild_wait_seconds: float
    socket_timeout_seconds: float
    redis_retry_seconds: float
    fallback_concurrency: int
    fallback_wait_seconds: float

    @classmethod
    def from_settings(cls) -> CacheConfig:
        config = cls(
            enabled=bool(getattr(settings, "PRODUCT_CACHE_ENABLED", True)),
            redis_url=getattr(settings, "PRODUCT_CACHE_REDIS_URL", None) or settings.REDIS_URL,
            key_prefix=str(getattr(settings, "PRODUCT_CACHE_KEY_PREFIX", "product-detail")),
            ttl_seconds=float(getattr(settings, "PRODUCT_CACHE_TTL_SECONDS", 300)),
            ttl_jitter=float(getattr(settings, "PRODUCT_CACHE_TTL_JITTER", 0.1)),
            stale_seconds=float(getattr(settings, "PRODUCT_CACHE_STALE_SECONDS", 60)),
            missing_ttl_seconds=float(getattr(settings, "PRODUCT_CACHE_MISSING_TTL_SECONDS", 5)),
            lock_ttl_seconds=float(getattr(settings, "PRODUCT_CACHE_LOCK_TTL_SECONDS", 5)),
            rebuild_wait_seconds=float(getattr(settings, "PRODUCT_CACHE_REBUILD_WAIT_SECONDS", 1)),
            socket_timeout_seconds=float(getattr(settings, "PRODUCT_CACHE_SOCKET_TIMEOUT_SECONDS", 0.25)),
            redis_retry_seconds=float(getattr(settings, "PRODUCT_CACHE_REDIS_RETRY_SECONDS", 5)),
            fallback_concurrency=int(getattr(settings, "PRODUCT_CACHE_FALLBACK_CONCURRENCY", 4)),
            fallback_wait_seconds=float(getattr(settings, "PRODUCT_CACHE_FALLBACK_WAIT_SECONDS", 0.5)),
        )
        config.check()
        return config

    def check(self) -> None:
        """Raise ImproperlyConfigured naming every product cache setting that is out of range."""
        problems = []
        if not self.key_prefix:
            problems.append("PRODUCT_CACHE_KEY_PREFIX must not be empty")
        if not 0 <= self.ttl_jitter < 1:
            problems.append(f"PRODUCT_CACHE_TTL_JITTER must be at least 0 and below 1, got {self.ttl_jitter}")
        if self.fallback_concurrency < 1:
            problems.append(f"PRODUCT_CACHE_FALLBACK_CONCURRENCY must be at least 1, got {self.fallback_concurrency}")
        positive = {
            "PRODUCT_CACHE_TTL_SECONDS": self.ttl_seconds,
            "PRODUCT_CACHE_MISSING_TTL_SECONDS": self.missing_ttl_seconds,
            "PRODUCT_CACHE_LOCK_TTL_SECONDS": self.lock_ttl_seconds,
            "PRODUCT_CACHE_SOCKET_TIMEOUT_SECONDS": self.socket_timeout_seconds,
        }
        problems += [f"{name} must be above 0, got {value}" for name, value in positive.items() if value <= 0]
        not_negative = {
            "PRODUCT_CACHE_STALE_SECONDS": self.stale_seconds,
            "PRODUCT_CACHE_REBUILD_WAIT_SECONDS": self.rebuild_wait_seconds,
            "PRODUCT_CACHE_REDIS_RETRY_SECONDS": self.redis_retry_seconds,
            "PRODUCT_CACHE_FALLBACK_WAIT_SECONDS": self.fallback_wait_seconds,
        }
        problems += [f"{name} must be 0 or more, got {value}" for name, value in not_negative.items() if value < 0]
        if problems:
            raise ImproperlyConfigured("Invalid product cache settings: " + "; ".join(problems) + ".")


def _milliseconds(seconds: float) -> int:
    return max(1, round(seconds * 1000))


class _RateLimitedWarning:
    """Log one warning per interval and count the ones it suppressed in between."""

    def __init__(self, event: str, interval_seconds: float) -> None:
        self.event = event
        self.interval_seconds = interval_seconds
        self._lock = threading.Lock()
        self._next_at = 0.0
        self._suppressed = 0

    def emit(self, **fields: Any) -> None:
        with self._lock:
            now = time.monotonic()
            if now < self._next_at:
                self._suppressed += 1
                return
            suppressed, self._suppressed = self._suppressed, 0
            self._next_at = now + self.interval_seconds
        log.warning(self.event, suppressed=suppressed, **fields)


class _ProductCache:
    """Redis access for one configuration, plus the process-local outage state and fallback slots."""

    def __init__(self, config: CacheConfig) -> None:
        self.config = config
        self.redis = redis.Redis.from_url(
            config.redis_url,
            socket_connect_timeout=config.socket_timeout_seconds,
            socket_timeout=config.socket_timeout_seconds,
            # One immediate retry replaces a pooled connection that a Redis restart
            # closed. More retries would only stretch every request during an outage.
            retry=Retry(NoBackoff(), 1),
        )
        self._store = self.redis.register_script(_STORE_SCRIPT)
        self._invalidate = self.redis.register_script(_INVALIDATE_SCRIPT)
        self._release = self.redis.register_script(_RELEASE_SCRIPT)
        self.fallback_slots = threading.BoundedSemaphore(config.fallback_concurrency)
        self._redis_down_until = 0.0
        self._redis_failed = False
        self.outage_warning = _RateLimitedWarning("product_cache_redis_unavailable", _OUTAGE_LOG_INTERVAL_SECONDS)
        self.overload_warning = _RateLimitedWarning("product_cache_fallback_full", _OUTAGE_LOG_INTERVAL_SECONDS)

    # --- keys -------------------------------------------------------------

    def pointer_key(self, handle: str) -> str:
        return f"{self.config.key_prefix}:slug:{handle}"

    def lock_key(self, handle: str) -> str:
        return f"{self.config.key_prefix}:slug:{handle}:lock"

    def body_key(self, product_id: int, version: int) -> str:
        return f"{self.config.key_prefix}:product:{product_id}:v{version}"

    def key_set_key(self, product_id: int) -> str:
        return f"{self.config.key_prefix}:product:{product_id}:keys"

    def floor_key(self, product_id: int) -> str:
        return f"{self.config.key_prefix}:product:{product_id}:floor"

    # --- outage state -----------------------------------------------------

    def redis_usable(self) -> bool:
        """Return False for PRODUCT_CACHE_REDIS_RETRY_SECONDS after a failure, so an outage costs one timeout, not one per request."""
        return time.monotonic() >= self._redis_down_until

    def record_redis_error(self, error: RedisError, *, operation: str) -> None:
        PRODUCT_CACHE_REDIS_ERRORS.labels(operation=operation).inc()
        self._redis_down_until = time.monotonic() + self.config.redis_retry_seconds
        self._redis_failed = True
        self.outage_warning.emit(
            operation=operation,
            error=str(error),
            redis_host=self.redis.connection_pool.connection_kwargs.get("host"),
            redis_port=self.redis.connection_pool.connection_kwargs.get("port"),
            retry_after_seconds=self.config.redis_retry_seconds,
        )

    def record_redis_success(self) -> None:
        if self._redis_failed:
            self._redis_failed = False
            log.info("product_cache_redis_recovered")

    # --- entries ----------------------------------------------------------

    def entry_get(self, handle: str) -> _Entry | None:
        """Return the cached entry for `handle`, or None when nothing usable is stored."""
        raw = self.redis.get(self.pointer_key(handle))
        if raw is None:
            return None
        try:
            pointer = json.loads(raw)
            product_id, version = int(pointer["id"]), int(pointer["version"])
            found, fresh_until = pointer["state"] == "found", float(pointer["fresh_until"])
        except (ValueError, KeyError, TypeError):
            # Treated as a miss, so a rebuild overwrites it.
            log.warning("product_cache_pointer_invalid", handle=handle, cache_key=self.pointer_key(handle))
            return None
        if not found:
            return _Entry(_Snapshot(product_id, version, None), fresh_until)
        body = self.redis.get(self.body_key(product_id, version))
        if body is None:
            return None
        return _Entry(_Snapshot(product_id, version, body.decode()), fresh_until)

    def entry_store(self, handle: str, snapshot: _Snapshot) -> bool:
        """Store `snapshot` for `handle` with a jittered TTL. Return False when a newer version or the floor rejects it.

        A Redis failure is logged and counted, not raised, because the caller
        already has the product from PostgreSQL.
        """
        config = self.config
        if snapshot.body_json is None:
            fresh_seconds = config.missing_ttl_seconds
            lifetime_seconds = fresh_seconds
        else:
            # Jitter spreads the expiry of entries stored together (after a deploy or a
            # flush), so they do not all miss in the same second.
            fresh_seconds = config.ttl_seconds * random.uniform(1 - config.ttl_jitter, 1 + config.ttl_jitter)
            lifetime_seconds = fresh_seconds + config.stale_seconds
        pointer = {
            "state": "missing" if snapshot.body_json is None else "found",
            "id": snapshot.product_id,
            "version": snapshot.version,
            "fresh_until": time.time() + fresh_seconds,
        }
        keys = [
            self.pointer_key(handle),
            self.body_key(snapshot.product_id, snapshot.version),
            self.key_set_key(snapshot.product_id),
            self.floor_key(snapshot.product_id),
        ]
        arguments = [
            snapshot.product_id,
            snapshot.version,
            json.dumps(pointer),
            snapshot.body_json or "",
            _milliseconds(lifetime_seconds),
        ]
        try:
            stored = bool(self._store(keys=keys, args=arguments))
        except RedisError as error:
            self.record_redis_error(error, operation="store")
            return False
        if not stored:
            log.info(
                "product_cache_store_rejected",
                handle=handle,
                product_id=snapshot.product_id,
                version=snapshot.version,
                cache_key=keys[1],
            )
        return stored

    def invalidate(self, product_id: int, version: int) -> int:
        # The floor must outlive every entry and every rebuild that may have read an older version.
        floor_seconds = (
            self.config.ttl_seconds * (1 + self.config.ttl_jitter)
            + self.config.stale_seconds
            + self.config.lock_ttl_seconds
        )
        keys = [self.key_set_key(product_id), self.floor_key(product_id)]
        return int(self._invalidate(keys=keys, args=[product_id, version, _milliseconds(floor_seconds)]))

    # --- rebuild lock -----------------------------------------------------

    def lock_acquire(self, handle: str) -> str | None:
        """Take the rebuild lock for `handle`. Return its token, or None when another request has the lock."""
        token = secrets.token_hex(16)
        acquired = self.redis.set(self.lock_key(handle), token, nx=True, px=_milliseconds(self.config.lock_ttl_seconds))
        return token if acquired else None

    def lock_release(self, handle: str, token: str) -> None:
        try:
            self._release(keys=[self.lock_key(handle)], args=[token])
        except RedisError as error:
            # The lock TTL frees the key anyway.
            self.record_redis_error(error, operation="unlock")

    def close(self) -> None:
        self.redis.close()


_current: _ProductCache | None = None
_current_lock = threading.Lock()


def _product_cache() -> _ProductCache:
    global _current
    cache = _current
    if cache is None:
        with _current_lock:
            if _current is None:
                _current = _ProductCache(CacheConfig.from_settings())
            cache = _current
    return cache


@receiver(setting_changed)
def _reset_on_setting_change(*, setting: str, **kwargs: Any) -> None:
    """Rebuild the cache object, with fresh outage state and fallback slots, after a settings override."""
    global _current
    if not (setting.startswith("PRODUCT_CACHE_") or setting == "REDIS_URL"):
        return
    with _current_lock:
        previous, _current = _current, None
    if previous is not None:
        previous.close()


# --- reading -----------------------------------------------------------------


def _load_from_database(handle: str) -> _Snapshot:
    """Load the published product `handle` from PostgreSQL and serialize it without availability."""
    product = published_products().filter(handle=handle).first()
    if product is None:
        # An unpublished row gives the marker an id, so publishing it (which
        # invalidates by id) removes the marker at once instead of after its TTL.
        hidden = Product.objects.filter(handle=handle).values_list("pk", "version").first()
        product_id, version = hidden if hidden is not None else (0, 0)
        return _Snapshot(product_id, version, None)
    data = ProductDetailSerializer(product, context={"availability": {}}).data
    for variant in data["variants"]:
        del variant["available"]
    return _Snapshot(product.pk, product.version, json.dumps(data, cls=JSONEncoder, separators=(",", ":")))


def _with_availability(snapshot: _Snapshot) -> ProductDetail | None:
    """Add each variant's current availability (one query) to the snapshot's body."""
    if snapshot.body_json is None:
        return None
    body = json.loads(snapshot.body_json)
    availability = availability_by_sku(variant["sku"] for variant in body["variants"])
    for variant in body["variants"]:
        variant["available"] = max(availability.get(variant["sku"], 0), 0)
    return ProductDetail(product_id=snapshot.product_id, version=snapshot.version, body=body)


def _rebuild(cache: _ProductCache, handle: str, token: str) -> _Snapshot:
    try:
        # The previous holder may have stored the entry between our miss and our lock.
        entry = cache.entry_get(handle)
        if entry is not None and entry.is_fresh():
            PRODUCT_CACHE_READS.labels(result="coalesced").inc()
            return entry.snapshot
        snapshot = _load_from_database(handle)
        PRODUCT_CACHE_READS.labels(result="rebuilt").inc()
        cache.entry_store(handle, snapshot)
        return snapshot
    finally:
        cache.lock_release(handle, token)


def _read_from_database_bounded(cache: _ProductCache, handle: str, *, reason: str) -> ProductDetail | None:
    """Read the product and its availability from PostgreSQL while holding one of the process's fallback slots.

    Raises ServiceUnavailableError (503 with Retry-After) when no slot frees
    up within PRODUCT_CACHE_FALLBACK_WAIT_SECONDS, so a cache outage cannot
    pile every request onto the database.
    """
    if not cache.fallback_slots.acquire(timeout=cache.config.fallback_wait_seconds):
        PRODUCT_CACHE_READS.labels(result="rejected").inc()
        cache.overload_warning.emit(handle=handle, reason=reason, concurrency=cache.config.fallback_concurrency)
        raise ServiceUnavailableError(
            "product_cache_fallback_full",
            "The product cache is unavailable and the database fallback is at its concurrency limit.",
            retry_after=_FALLBACK_RETRY_AFTER_SECONDS,
            hint="Retry after the number of seconds in Retry-After.",
        )
    try:
        PRODUCT_CACHE_READS.labels(result="fallback").inc()
        with PRODUCT_CACHE_FALLBACK_IN_PROGRESS.track_inprogress():
            return _with_availability(_load_from_database(handle))
    finally:
        cache.fallback_slots.release()


def _wait_for_rebuild(cache: _ProductCache, handle: str) -> ProductDetail | None:
    """Poll for the entry that another request is rebuilding, up to PRODUCT_CACHE_REBUILD_WAIT_SECONDS."""
    deadline = time.monotonic() + cache.config.rebuild_wait_seconds
    while (remaining := deadline - time.monotonic()) > 0:
        time.sleep(min(_REBUILD_POLL_SECONDS, remaining))
        entry = cache.entry_get(handle)
        if entry is not None:
            PRODUCT_CACHE_READS.labels(result="coalesced").inc()
            return _with_availability(entry.snapshot)
        # The lock expires after its TTL even when its holder died, so a waiter
        # takes over the rebuild instead of waiting for a result that never comes.
        token = cache.lock_acquire(handle)
        if token is not None:
            return _with_availability(_rebuild(cache, handle, token))
    return _read_from_database_bounded(cache, handle, reason="rebuild_wait_timed_out")


def _read_through_cache(cache: _ProductCache, handle: str) -> ProductDetail | None:
    entry = cache.entry_get(handle)
    cache.record_redis_success()
    if entry is not None and entry.is_fresh():
        PRODUCT_CACHE_READS.labels(result="hit").inc()
        return _with_availability(entry.snapshot)

    token = cache.lock_acquire(handle)
    if token is not None:
        return _with_availability(_rebuild(cache, handle, token))
    if entry is not None:
        # Past its TTL but still the version it was stored at, while another request refreshes it.
        PRODUCT_CACHE_READS.labels(result="stale").inc()
        return _with_availability(entry.snapshot)
    return _wait_for_rebuild(cache, handle)


def product_detail_get(*, handle: str) -> ProductDetail | None:
    """Return the published product `handle` with current availability, or None when there is none.

    Reads Redis first. A miss is rebuilt by one request per handle while the
    others wait or get the stale copy. When Redis fails, reads go to PostgreSQL
    through a per-process limit of PRODUCT_CACHE_FALLBACK_CONCURRENCY, and
    ServiceUnavailableError is raised when that limit stays full.
    """
    cache = _product_cache()
    if not cache.config.enabled:
        PRODUCT_CACHE_READS.labels(result="disabled").inc()
        return _with_availability(_load_from_database(handle))
    if not cache.redis_usable():
        return _read_from_database_bounded(cache, handle, reason="redis_unavailable")
    try:
        return _read_through_cache(cache, handle)
    except RedisError as error:
        cache.record_redis_error(error, operation="read")
        return _read_from_database_bounded(cache, handle, reason="redis_unavailable")


# --- invalidation --------------------------------------------------------------


def invalidate_product(handle_or_id: int | str, version: int) -> int:
    """Delete the cached entries of a product that are older than `version` and return the number of keys deleted.

    Pass the product id as an int whenever it is known: a str is always read
    as a handle, because handles may consist of digits only. By id, the call
    also sets a floor so that a rebuild that read an older version before the
    change cannot store it afterwards. By handle, it works only while the
    handle's pointer names the product. Calls are idempotent and tolerate any
    order, so replayed events are harmless. Raises redis.RedisError when Redis
    fails, so that an event consumer retries.
    """
    if isinstance(handle_or_id, bool) or not isinstance(handle_or_id, (int, str)):
        raise TypeError(f"handle_or_id must be a product id (int) or a handle (str), got {handle_or_id!r}.")
    cache = _product_cache()
    try:
        if isinstance(handle_or_id, int):
            return cache.invalidate(handle_or_id, version)
        entry = cache.entry_get(handle_or_id)
        if entry is None:
            return 0
        if entry.snapshot.product_id == 0:
            # A marker for a handle that no row had, so there is no version to compare.
            return int(cache.redis.delete(cache.pointer_key(handle_or_id)))
        return cache.invalidate(entry.snapshot.product_id, version)
    except RedisError:
        PRODUCT_CACHE_REDIS_ERRORS.labels(operation="invalidate").inc()
        raise


_invalidation_warning = _RateLimitedWarning("product_cache_invalidation_failed", _OUTAGE_LOG_INTERVAL_SECONDS)


def invalidate_product_after_commit(*, product_id: int, version: int) -> None:
    """Invalidate like invalidate_product, but log a Redis failure instead of raising it.

    Runs from transaction.on_commit in the catalog write path: the change has
    committed by then, so an exception would only turn a saved edit into an
    error response. Without the invalidation, the entry of the older version
    stays until its TTL and stale window run out.
    """
    try:
        invalidate_product(product_id, version)
    except RedisError as error:
        _invalidation_warning.emit(product_id=product_id, version=version, error=str(error))

"""The OpenSearch client of the product index, its alias, and the error types callers handle."""
from __future__ import annotations

import threading
import time
from typing import Any

from django.core.signals import setting_changed
from django.dispatch import receiver
from opensearchpy import OpenSearch
from opensearchpy.exceptions import ConnectionError as OpenSearchConnectionError
from opensearchpy.exceptions import NotFoundError, TransportError

from catalog.search.config import SearchConfig, index_definition
from commerce.logging import get_logger

log = get_logger(__name__)


class SearchUnavailable(Exception):
    """Raised when OpenSearch cannot be reached, times out or returns a server error."""


class SearchIndexMissing(SearchUnavailable):
    """Raised by a search when the alias does not exist, i.e. no index was ever built."""


def is_unavailable(error: TransportError) -> bool:
    """Tell whether `error` means OpenSearch is down or overloaded, rather than that the request was wrong."""
    if isinstance(error, OpenSearchConnectionError):
        return True
    status = error.status_code
    return isinstance(status, int) and (status >= 500 or status == 429)


def error_type(error: TransportError) -> str | None:
    """Return OpenSearch's error type ("index_not_found_exception", ...) from an error response, if any."""
    info = error.info
    if isinstance(info, dict) and isinstance(info.get("error"), dict):
        return info["error"].get("type")
    return None


class _Search:
    """The client for one configuration, plus the process-local state of the search backoff."""

    def __init__(self, config: SearchConfig) -> None:
        self.config = config
        # max_retries=0: the consumer framework and the commands retry on their
        # own terms, and a storefront search should fail fast into its 503.
        self.client = OpenSearch(
            hosts=[config.url], timeout=config.write_timeout_seconds, max_retries=0, retry_on_timeout=False
        )
        self.skip_until = 0.0

    def close(self) -> None:
        self.client.close()


_current: _Search | None = None
_current_lock = threading.Lock()


def _search() -> _Search:
    global _current
    current = _current
    if current is None:
        with _current_lock:
            if _current is None:
                _current = _Search(SearchConfig.from_settings())
            current = _current
    return current


def search_config() -> SearchConfig:
    return _search().config


def search_client() -> OpenSearch:
    """Return the process's OpenSearch client; it is thread-safe and pools its connections."""
    return _search().client


@receiver(setting_changed)
def _reset_on_setting_change(*, setting: str, **kwargs: Any) -> None:
    """Drop the client, and with it the backoff state, after a SEARCH_* or OPENSEARCH_URL override."""
    global _current
    if not (setting.startswith("SEARCH_") or setting == "OPENSEARCH_URL"):
        return
    with _current_lock:
        previous, _current = _current, None
    if previous is not None:
        previous.close()


# --- backoff of the storefront search ----------------------------------------


def search_backoff_remaining() -> float:
    """Return the seconds left in which searches skip OpenSearch after a failure, or 0."""
    return max(0.0, _search().skip_until - time.monotonic())


def search_backoff_start() -> None:
    """Skip OpenSearch for SEARCH_RETRY_AFTER_SECONDS, so a hanging server costs one timeout per process, not one per request."""
    current = _search()
    current.skip_until = time.monotonic() + current.config.retry_after_seconds


# --- indexes and the alias -----------------------------------------------------


def alias_indices(client: OpenSearch, alias: str) -> list[str]:
    """Return the indexes that `alias` points to, sorted; empty when the alias does not exist."""
    try:
        return sorted(client.indices.get_alias(name=alias))
    except NotFoundError:
        return []


def create_index(client: OpenSearch, name: str, *, aliases: dict[str, Any] | None = None, **index_settings: Any) -> None:
    """Create index `name` from index.json, with `index_settings` overriding its index settings."""
    definition = index_definition()
    body = {
        "settings": {**definition["settings"], "index": {**definition["settings"]["index"], **index_settings}},
        "mappings": definition["mappings"],
    }
    if aliases:
        body["aliases"] = aliases
    client.indices.create(index=name, body=body)


def ensure_alias(client: OpenSearch, config: SearchConfig) -> None:
    """Create an empty index behind the alias when the alias does not exist.

    The alias is added with is_write_index, and OpenSearch rejects a second
    write index for one alias, so when two processes bootstrap at once one
    index creation fails and both end up writing to the other one. The empty
    index lacks every product that no event has touched yet. The drift check
    reports those as missing and `--repair` or `reindex_catalog` fills them in.
    """
    try:
        if alias_indices(client, config.alias):
            return
        name = config.new_index_name()
        try:
            create_index(client, name, aliases={config.alias: {"is_write_index": True}})
        except TransportError as error:
            if not alias_indices(client, config.alias):
                raise
            # Another process created the alias between our check and our create.
            # The failed create left no index behind.
            log.info("search_alias_created_concurrently", alias=config.alias, error=str(error))
            return
    except TransportError as error:
        if is_unavailable(error):
            raise SearchUnavailable(f"OpenSearch at {config.url} is unavailable: {error}") from error
        raise
    log.warning("search_alias_bootstrapped", alias=config.alias, index=name)

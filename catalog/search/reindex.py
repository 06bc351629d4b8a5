"""Rebuild the product index from PostgreSQL behind the alias, without interrupting searches."""
from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from opensearchpy import OpenSearch, helpers
from opensearchpy.exceptions import NotFoundError, TransportError

from catalog.models import Product
from catalog.search.client import (
    SearchUnavailable,
    alias_indices,
    create_index,
    error_type,
    is_unavailable,
    search_client,
    search_config,
)
from catalog.search.config import SearchConfig, index_definition
from catalog.search.documents import build_actions
from catalog.search.drift import RepairResult, check_search_drift
from catalog.search.indexer import EXTERNAL
from commerce.logging import get_logger

log = get_logger(__name__)

# Attempts at the alias swap when another build or a bootstrap changed the alias meanwhile.
_SWAP_ATTEMPTS = 3
# Error types OpenSearch returns when the alias moved after it was read: a removed index no
# longer has the alias, was deleted, or another index became the write index.
_ALIAS_MOVED_ERRORS = frozenset({"aliases_not_found_exception", "index_not_found_exception", "illegal_state_exception"})


@dataclass
class ReindexResult:
    index: str
    previous_indices: list[str]
    documents: int
    tombstones: int
    # Rewrites by the catch-up after the swap, for changes indexed into the old index during the build.
    catch_up: RepairResult
    # Indexes matching the alias pattern that the alias does not point to: leftovers of interrupted builds.
    leftover_indices: list[str]
    seconds: float


def reindex_catalog(*, batch_size: int | None = None) -> ReindexResult:
    """Build a fresh index from PostgreSQL, point the alias at it in one request and drop the old index.

    Searches and event writes keep using the old index during the build.
    Events applied to it in that time are absent from the new index, so
    after the swap a drift repair rewrites every product whose version
    differs. Raises SearchUnavailable when OpenSearch cannot be reached; the
    new index is then deleted and the alias is left as it was.
    """
    config = search_config()
    client = search_client()
    batch_size = batch_size or config.batch_size
    started = time.monotonic()
    name = config.new_index_name()
    log.info("search_reindex_started", alias=config.alias, index=name)

    try:
        # No refreshes during the load: each one writes a segment, and no search reads this index yet.
        create_index(client, name, refresh_interval="-1")
        try:
            documents, tombstones = _load(client, name, config, batch_size)
            refresh_interval = index_definition()["settings"]["index"]["refresh_interval"]
            client.indices.put_settings(index=name, body={"index": {"refresh_interval": refresh_interval}})
            client.indices.refresh(index=name, request_timeout=config.write_timeout_seconds)
            client.cluster.health(
                index=name,
                wait_for_status="yellow",
                timeout=f"{int(config.write_timeout_seconds)}s",
                request_timeout=config.write_timeout_seconds + 5,
            )
            previous = _swap_alias(client, config.alias, name)
        except BaseException:
            _delete_quietly(client, name)
            raise
    except TransportError as error:
        if is_unavailable(error):
            raise SearchUnavailable(f"OpenSearch at {config.url} is unavailable: {error}") from error
        raise

    catch_up = check_search_drift(repair=True).repair or RepairResult()
    for old in previous:
        _delete_quietly(client, old)
    leftovers = [index for index in _matching_indices(client, config) if index != name]
    seconds = time.monotonic() - started
    log.info(
        "search_reindex_finished",
        alias=config.alias,
        index=name,
        previous_indices=previous,
        documents=documents,
        tombstones=tombstones,
        catch_up_indexed=catch_up.indexed,
        catch_up_removed=catch_up.removed,
        seconds=round(seconds, 2),
    )
    return ReindexResult(
        index=name,
        previous_indices=previous,
        documents=documents,
        tombstones=tombstones,
        catch_up=catch_up,
        leftover_indices=leftovers,
        seconds=seconds,
    )


def _load(client: OpenSearch, index: str, config: SearchConfig, batch_size: int) -> tuple[int, int]:
    """Bulk-load every product (tombstones for unpublished ones) into `index`; return both counts."""
    counts = {"documents": 0, "tombstones": 0}

    def actions() -> Iterator[dict[str, Any]]:
        for batch in _product_id_batches(batch_size):
            for action in build_actions(batch):
                counts["documents" if action.published else "tombstones"] += 1
                yield {
                    "_op_type": "index",
                    "_index": index,
                    "_id": str(action.product_id),
                    "version": action.version,
                    "version_type": EXTERNAL,
                    "_source": action.document,
                }

    # max_retries retries only documents rejected with 429 (a full write queue), with backoff.
    for ok, item in helpers.streaming_bulk(
        client,
        actions(),
        chunk_size=batch_size,
        max_retries=3,
        initial_backoff=1,
        raise_on_error=True,
        request_timeout=config.write_timeout_seconds,
    ):
        if not ok:
            # raise_on_error raises before this; kept so that a changed default cannot drop documents silently.
            raise RuntimeError(f"Bulk load into {index} failed: {item}")
    return counts["documents"], counts["tombstones"]


def _product_id_batches(batch_size: int) -> Iterator[list[int]]:
    """Yield every product id in ascending batches, by keyset pagination so each batch is one index range scan."""
    last_id = 0
    while True:
        batch = list(
            Product.objects.filter(pk__gt=last_id).order_by("pk").values_list("pk", flat=True)[:batch_size]
        )
        if not batch:
            return
        yield batch
        last_id = batch[-1]


def _swap_alias(client: OpenSearch, alias: str, new_index: str) -> list[str]:
    """Move `alias` from its current indexes to `new_index` in one _aliases request; return the indexes it left.

    must_exist makes the request fail when another build or a bootstrap moved
    the alias after we read it. The swap then re-reads and tries again. The
    other index's documents are not needed: the catch-up repair after the swap
    rewrites whatever changed since this build read PostgreSQL.
    """
    for attempt in range(1, _SWAP_ATTEMPTS + 1):
        previous = alias_indices(client, alias)
        actions: list[dict[str, Any]] = [
            {"remove": {"index": index, "alias": alias, "must_exist": True}} for index in previous
        ]
        actions.append({"add": {"index": new_index, "alias": alias, "is_write_index": True}})
        try:
            client.indices.update_aliases(body={"actions": actions})
        except TransportError as error:
            if error_type(error) not in _ALIAS_MOVED_ERRORS or attempt == _SWAP_ATTEMPTS:
                raise
            log.warning("search_alias_swap_retrying", alias=alias, attempt=attempt, error_type=error_type(error))
            continue
        log.info("search_alias_swapped", alias=alias, index=new_index, previous_indices=previous)
        return previous
    raise AssertionError("unreachable: the last attempt returns or raises")


def _matching_indices(client: OpenSearch, config: SearchConfig) -> list[str]:
    try:
        return sorted(client.indices.get(index=config.index_pattern, ignore_unavailable=True))
    except NotFoundError:
        return []


def _delete_quietly(client: OpenSearch, index: str) -> None:
    try:
        client.indices.delete(index=index, request_timeout=search_config().write_timeout_seconds)
    except NotFoundError:
        pass
    except TransportError as error:
        # A leftover index wastes disk but serves nothing: the alias does not point to it.
        log.warning("search_index_delete_failed", index=index, error=str(error))

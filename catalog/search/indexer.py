"""Write product documents to the index, with the catalog version as the document's external version.

Two version types are used:

- ``external`` for catalog changes: OpenSearch stores a document only when
  its version is strictly greater than the stored one, so a replayed or
  late event is rejected with 409 and counts as done.
- ``external_gte`` for availability refreshes: stock changes do not bump the
  catalog version, so the fresh availability is written at the same version.
  It still rejects every older version. Two refreshes at the same version may
  land in either order, so an older stock reading can win until the next
  refresh.

A partial update (the _update API) is never used: it raises the stored
version by one, and the next real catalog version would then be rejected.
"""
from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from typing import Any

from opensearchpy.exceptions import TransportError

from catalog.search.client import (
    SearchUnavailable,
    ensure_alias,
    is_unavailable,
    search_client,
    search_config,
)
from catalog.search.documents import IndexAction, build_actions
from commerce.logging import get_logger

log = get_logger(__name__)

EXTERNAL = "external"
EXTERNAL_GTE = "external_gte"


class WriteOutcome(enum.Enum):
    INDEXED = "indexed"
    # A tombstone was written: the product left search.
    REMOVED = "removed"
    # Rejected because the index already contains this version or a newer one, so nothing is left to do.
    OLDER = "older"


class SearchIndexError(Exception):
    """Raised when OpenSearch rejects a document for a reason other than its version, e.g. a mapping error."""


def write_actions(
    actions: Sequence[IndexAction],
    *,
    version_type: str = EXTERNAL,
    index: str | None = None,
    refresh: bool = False,
) -> dict[int, WriteOutcome]:
    """Write `actions` in one bulk request and return the outcome per product id.

    Writes go to the alias unless `index` names a concrete index (a build in
    progress). A missing alias is created first (see client.ensure_alias).
    Raises SearchUnavailable when OpenSearch is down and SearchIndexError for
    any other rejected document.
    """
    if not actions:
        return {}
    config = search_config()
    target = index or config.alias
    items = _bulk(actions, target=target, version_type=version_type, require_alias=index is None, refresh=refresh)
    if index is None and any(_item_error_type(item) == "index_not_found_exception" for item in items):
        ensure_alias(search_client(), config)
        items = _bulk(actions, target=target, version_type=version_type, require_alias=True, refresh=refresh)

    outcomes: dict[int, WriteOutcome] = {}
    failures: list[str] = []
    overloaded = False
    for action, item in zip(actions, items, strict=True):
        status = item.get("status", 0)
        if 200 <= status < 300:
            outcomes[action.product_id] = WriteOutcome.INDEXED if action.published else WriteOutcome.REMOVED
        elif status == 409 and _item_error_type(item) == "version_conflict_engine_exception":
            outcomes[action.product_id] = WriteOutcome.OLDER
        else:
            overloaded = overloaded or status == 429 or status >= 500
            failures.append(f"product {action.product_id} at version {action.version}: {status} {item.get('error')}")
    if failures:
        shown = "; ".join(failures[:5])
        message = f"OpenSearch rejected {len(failures)} of {len(actions)} document(s) in {target}: {shown}."
        # A full write queue or a failed shard clears by itself, so the caller should retry.
        raise SearchUnavailable(message) if overloaded else SearchIndexError(message)
    return outcomes


def index_products(
    product_ids: Iterable[int],
    *,
    deleted_versions: dict[int, int] | None = None,
    version_type: str = EXTERNAL,
    index: str | None = None,
    refresh: bool = False,
) -> dict[int, WriteOutcome]:
    """Read the products from PostgreSQL and write their current documents or tombstones.

    `deleted_versions` gives the tombstone version of products that have no
    row any more; products without a row and without an entry are skipped.
    """
    actions = build_actions(product_ids, fallback_versions=deleted_versions)
    return write_actions(actions, version_type=version_type, index=index, refresh=refresh)


def index_product_change(*, product_id: int, event_version: int) -> WriteOutcome:
    """Bring one product's document up to date after a catalog event for it.

    The document is built from the product's current row, not from the event,
    so a late event writes the newest state or is rejected as older.
    `event_version` is only used as the tombstone version of a deleted
    product, which has no row to read a version from.
    """
    outcomes = index_products([product_id], deleted_versions={product_id: event_version})
    outcome = outcomes[product_id]
    log.debug("search_document_written", product_id=product_id, event_version=event_version, outcome=outcome.value)
    return outcome


def _bulk(
    actions: Sequence[IndexAction], *, target: str, version_type: str, require_alias: bool, refresh: bool
) -> list[dict[str, Any]]:
    body: list[dict[str, Any]] = []
    for action in actions:
        body.append(
            {"index": {"_index": target, "_id": str(action.product_id), "version": action.version, "version_type": version_type}}
        )
        body.append(action.document)
    config = search_config()
    try:
        response = search_client().bulk(
            body=body,
            require_alias=require_alias,
            refresh="true" if refresh else "false",
            request_timeout=config.write_timeout_seconds,
        )
    except TransportError as error:
        if is_unavailable(error):
            raise SearchUnavailable(f"OpenSearch at {config.url} is unavailable: {error}") from error
        raise SearchIndexError(f"OpenSearch rejected a bulk request to {target}: {error}") from error
    return [next(iter(item.values())) for item in response["items"]]


def _item_error_type(item: dict[str, Any]) -> str | None:
    error = item.get("error")
    return error.get("type") if isinstance(error, dict) else None

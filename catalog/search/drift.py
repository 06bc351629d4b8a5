"""Compare the search index with PostgreSQL, and repair the difference.

The invariant: the index contains a published document for every published
product, at the product's current version, and no published document for
anything else. Tombstones (unpublished or deleted products) are expected and
are not drift.

Availability is compared too, but a difference is reported separately and is
not drift: stock changes do not bump the version, so the index is allowed to
lag behind them until the next refresh.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from opensearchpy import helpers
from opensearchpy.exceptions import NotFoundError, TransportError

from catalog.models import Product
from catalog.search.client import SearchUnavailable, is_unavailable, search_client, search_config
from catalog.search.indexer import EXTERNAL_GTE, WriteOutcome, index_products
from catalog.selectors import filter_in_stock
from commerce.logging import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class DriftEntry:
    product_id: int
    # Version of the published product in PostgreSQL; None when it is not published or has no row.
    expected_version: int | None
    # Version of the document in the index; None when there is none.
    indexed_version: int | None


@dataclass(frozen=True)
class IndexedDocument:
    version: int
    published: bool
    in_stock: bool | None


@dataclass
class DriftReport:
    alias: str
    alias_exists: bool
    # Published products in PostgreSQL and published documents in the index.
    products: int
    documents: int
    # Published in PostgreSQL, but no document or only a tombstone in the index.
    missing: list[DriftEntry] = field(default_factory=list)
    # Published on both sides at different versions.
    stale: list[DriftEntry] = field(default_factory=list)
    # A published document for a product that is unpublished or deleted.
    orphans: list[DriftEntry] = field(default_factory=list)
    # Same version on both sides, but the indexed in_stock differs from the stock now.
    availability_stale: list[int] = field(default_factory=list)

    @property
    def drift_count(self) -> int:
        return len(self.missing) + len(self.stale) + len(self.orphans)

    def as_dict(self) -> dict[str, Any]:
        return {
            "alias": self.alias,
            "alias_exists": self.alias_exists,
            "products": self.products,
            "documents": self.documents,
            "drift_count": self.drift_count,
            "missing": [asdict(entry) for entry in self.missing],
            "stale": [asdict(entry) for entry in self.stale],
            "orphans": [asdict(entry) for entry in self.orphans],
            "availability_stale": list(self.availability_stale),
        }


@dataclass
class RepairResult:
    indexed: int = 0
    removed: int = 0
    availability_refreshed: int = 0
    # Writes the index rejected because it already held that version or a newer one.
    rejected_older: int = 0

    def add(self, outcomes: dict[int, WriteOutcome], *, availability: bool = False) -> None:
        for outcome in outcomes.values():
            if outcome is WriteOutcome.OLDER:
                self.rejected_older += 1
            elif availability:
                self.availability_refreshed += 1
            elif outcome is WriteOutcome.INDEXED:
                self.indexed += 1
            else:
                self.removed += 1


@dataclass
class DriftCheck:
    found: DriftReport
    repair: RepairResult | None = None
    # The second comparison, after the repair.
    remaining: DriftReport | None = None

    @property
    def unrepaired(self) -> DriftReport:
        return self.remaining if self.remaining is not None else self.found

    def as_dict(self) -> dict[str, Any]:
        return {
            "found": self.found.as_dict(),
            "repair": asdict(self.repair) if self.repair is not None else None,
            "remaining": self.remaining.as_dict() if self.remaining is not None else None,
            "unrepaired_drift_count": self.unrepaired.drift_count,
        }


def check_search_drift(*, repair: bool) -> DriftCheck:
    """Compare the index with PostgreSQL; with `repair`, fix what differs and compare again.

    Raises SearchUnavailable when OpenSearch cannot be reached.
    """
    found = drift_find()
    check = DriftCheck(found=found)
    if repair and (found.drift_count or found.availability_stale):
        check.repair = drift_repair(found)
        check.remaining = drift_find()
    log.info(
        "search_drift_checked",
        alias=found.alias,
        products=found.products,
        documents=found.documents,
        missing=len(found.missing),
        stale=len(found.stale),
        orphans=len(found.orphans),
        availability_stale=len(found.availability_stale),
        repaired=check.repair is not None,
        unrepaired=check.unrepaired.drift_count,
    )
    return check


def drift_find() -> DriftReport:
    """List missing, stale and orphan documents, and documents whose availability changed since indexing."""
    config = search_config()
    # The index is read before PostgreSQL. A change that commits in between shows
    # up as drift and a repair writes it again, which is harmless because writes
    # are versioned. The second comparison after a repair finds it settled.
    alias_exists, indexed = _indexed_documents()
    published = dict(Product.objects.filter(published=True).values_list("pk", "version"))
    in_stock = set(filter_in_stock(Product.objects.filter(published=True), True).values_list("pk", flat=True))

    report = DriftReport(
        alias=config.alias,
        alias_exists=alias_exists,
        products=len(published),
        documents=sum(1 for document in indexed.values() if document.published),
    )
    for product_id, version in sorted(published.items()):
        document = indexed.get(product_id)
        if document is None or not document.published:
            indexed_version = document.version if document is not None else None
            report.missing.append(DriftEntry(product_id, version, indexed_version))
        elif document.version != version:
            report.stale.append(DriftEntry(product_id, version, document.version))
        elif document.in_stock != (product_id in in_stock):
            report.availability_stale.append(product_id)
    for product_id, document in sorted(indexed.items()):
        if document.published and product_id not in published:
            report.orphans.append(DriftEntry(product_id, None, document.version))
    return report


def drift_repair(report: DriftReport) -> RepairResult:
    """Rewrite missing and stale documents, tombstone orphans and refresh availability, from PostgreSQL.

    A document that the index stores at a newer version than PostgreSQL (after a
    database restore, say) is rejected as older and stays. Only
    `reindex_catalog` replaces it.
    """
    batch_size = search_config().batch_size
    result = RepairResult()
    outdated = [entry.product_id for entry in report.missing + report.stale]
    for batch in _batches(outdated, batch_size):
        result.add(index_products(batch))
    # An orphan whose row is gone gets a tombstone one version above the document,
    # which is the version its product.deleted event carries when the document was current.
    orphan_versions = {entry.product_id: entry.indexed_version + 1 for entry in report.orphans}
    for batch in _batches(sorted(orphan_versions), batch_size):
        result.add(index_products(batch, deleted_versions={key: orphan_versions[key] for key in batch}))
    for batch in _batches(report.availability_stale, batch_size):
        result.add(index_products(batch, version_type=EXTERNAL_GTE), availability=True)
    log.info("search_drift_repaired", **asdict(result))
    return result


def _indexed_documents() -> tuple[bool, dict[int, IndexedDocument]]:
    """Read (id, version, published, in_stock) of every document through a scroll; (False, {}) when the alias is missing."""
    config = search_config()
    client = search_client()
    try:
        # A scroll returns only refreshed documents; without this, writes of the last second would look missing.
        client.indices.refresh(index=config.alias, request_timeout=config.write_timeout_seconds)
        documents = {}
        for hit in _scan(config.alias, config.batch_size, config.write_timeout_seconds):
            source = hit.get("_source", {})
            documents[int(hit["_id"])] = IndexedDocument(
                version=int(hit["_version"]),
                published=bool(source.get("published")),
                in_stock=source.get("in_stock"),
            )
    except NotFoundError:
        return False, {}
    except TransportError as error:
        if is_unavailable(error):
            raise SearchUnavailable(f"OpenSearch at {config.url} is unavailable: {error}") from error
        raise
    return True, documents


def _scan(alias: str, size: int, timeout: float) -> Iterator[dict[str, Any]]:
    query = {"query": {"match_all": {}}, "_source": ["published", "in_stock"], "version": True}
    return helpers.scan(search_client(), index=alias, query=query, size=size, scroll="2m", request_timeout=timeout)


def _batches(values: Sequence[int], size: int) -> Iterator[list[int]]:
    values = list(values)
    for start in range(0, len(values), size):
        yield values[start : start + size]

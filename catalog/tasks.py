"""Celery entry points of the catalog: the periodic search drift check (scheduled by beat)."""
from dataclasses import asdict

from celery import shared_task

from catalog.search.client import SearchUnavailable
from catalog.search.drift import check_search_drift
from commerce.logging import get_logger

log = get_logger(__name__)


@shared_task(name="catalog.tasks.check_search_drift")
def check_search_drift_task(repair: bool = True) -> dict:
    """Compare the search index with PostgreSQL and, by default, repair it; return the counts.

    Repairing is safe to run unattended and twice, because every write is
    versioned and rebuilt from PostgreSQL. A repairing run also refreshes
    availability that changed since indexing, so the task's interval bounds
    how long search can show an old in_stock value.
    """
    try:
        check = check_search_drift(repair=repair)
    except SearchUnavailable as error:
        # The next scheduled run tries again, so retrying here would only stack up runs.
        log.warning("search_drift_check_skipped", error=str(error))
        return {"skipped": str(error)}

    found, unrepaired = check.found, check.unrepaired
    if unrepaired.drift_count:
        # ERROR because someone must act: the repair did not converge, or repairs are off.
        log.error(
            "search_drift_unrepaired",
            drift_count=unrepaired.drift_count,
            missing=[entry.product_id for entry in unrepaired.missing[:50]],
            stale=[entry.product_id for entry in unrepaired.stale[:50]],
            orphans=[entry.product_id for entry in unrepaired.orphans[:50]],
        )
    elif found.drift_count:
        # Events still in flight show up here too, so a few repairs are normal.
        # A steady stream means the search indexer is behind or stopped.
        log.warning("search_drift_repaired", drift_count=found.drift_count)
    # Counts only: after an index loss the id lists cover the whole catalog, too much for the result backend.
    return {
        "found": {
            "missing": len(found.missing),
            "stale": len(found.stale),
            "orphans": len(found.orphans),
            "availability_stale": len(found.availability_stale),
            "drift_count": found.drift_count,
        },
        "repair": asdict(check.repair) if check.repair is not None else None,
        "unrepaired_drift_count": unrepaired.drift_count,
    }

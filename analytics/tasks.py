"""Celery entry points for analytics; beat runs the reconciliation (see CELERY_BEAT_SCHEDULE in settings)."""
from datetime import UTC, datetime, timedelta

from celery import shared_task
from django.db import InterfaceError, OperationalError

from analytics.reconciliation import BacklogUnavailable, reconcile
from commerce.logging import get_logger

log = get_logger(__name__)

# Today and yesterday (UTC): orders of older days rarely change, and a person runs
# reconcile_order_counts over a longer range when they need it.
RECONCILE_DAYS = 2
# Order ids per log line; the command lists every one.
MAX_LOGGED_ORDER_IDS = 50


@shared_task(
    name="analytics.tasks.reconcile_order_counts",
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    max_retries=3,
)
def reconcile_order_counts(days: int = RECONCILE_DAYS) -> dict:
    """Reconcile the last `days` UTC days and log the result; return the summary counts.

    Only reads, so a duplicate delivery of the task is harmless.
    """
    end = datetime.now(UTC).date()
    start = end - timedelta(days=days - 1)
    try:
        report = reconcile(start=start, end=end)
    except BacklogUnavailable as error:
        log.warning("analytics_reconciliation_skipped", start=start.isoformat(), end=end.isoformat(), error=str(error))
        return {"skipped": str(error)}

    summary = report.as_dict()["summary"]
    fields = {"start": start.isoformat(), "end": end.isoformat(), **summary}
    if report.has_unexplained:
        # ERROR because someone must act: events were lost, applied twice or applied wrongly.
        log.error(
            "analytics_reconciliation_unexplained",
            order_ids=[str(difference.order_id) for difference in report.unexplained[:MAX_LOGGED_ORDER_IDS]],
            reasons=sorted({difference.reason for difference in report.unexplained}),
            **fields,
        )
    else:
        log.info("analytics_reconciled", **fields)
    return summary

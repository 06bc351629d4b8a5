"""Celery entry points for inventory, both scheduled by beat (see CELERY_BEAT_SCHEDULE in settings).

Celery may deliver a task twice: with late acknowledgement (CELERY_TASK_ACKS_LATE)
the Redis broker redelivers a message whose worker has not acknowledged it
within the visibility timeout (Celery 5 docs, "Using Redis"). Both tasks are
safe to run twice, because a second expiry run finds nothing due that the
first one ended, and reconciliation only reads.
"""
from celery import shared_task
from django.db import InterfaceError, OperationalError
from django.utils import timezone

from commerce.logging import get_logger
from inventory.services import expire_due, reconcile

log = get_logger(__name__)

EXPIRE_BATCH_SIZE = 500


@shared_task(
    name="inventory.tasks.expire_reservations",
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    max_retries=3,
)
def expire_reservations(batch_size: int = EXPIRE_BATCH_SIZE) -> int:
    """Expire every active reservation that is due now and return how many this run expired."""
    return expire_due(now=timezone.now(), batch_size=batch_size)


@shared_task(
    name="inventory.tasks.reconcile_inventory",
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    max_retries=3,
)
def reconcile_inventory() -> dict:
    """Check every SKU for drift and log the result.

    Repairs stay a person's decision (`manage.py reconcile_inventory --fix`), because drift means
    something bypassed the services and the cause needs a look first.
    """
    result = reconcile(fix=False, actor="inventory.tasks.reconcile_inventory")
    report = result.as_dict()
    if result.drift:
        # ERROR because someone must act: drift means a write bypassed the services.
        log.error("inventory_drift_found", drift_count=len(result.drift), skus=[d.sku for d in result.drift])
    else:
        log.info("inventory_reconciled", drift_count=0)
    return report

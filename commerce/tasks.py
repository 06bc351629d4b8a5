"""Housekeeping tasks that belong to no single app."""
import time

import redis
from celery import shared_task
from django.conf import settings

from commerce.logging import get_logger

log = get_logger(__name__)

HEARTBEAT_KEY = "commerce:celery:heartbeat"


@shared_task(name="commerce.tasks.record_worker_heartbeat", ignore_result=False)
def record_worker_heartbeat() -> float:
    """Store the time a worker last ran a beat-scheduled task, so operators can see beat and workers alive.

    Safe to run twice: it only overwrites a timestamp.
    """
    now = time.time()
    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        client.set(HEARTBEAT_KEY, now, ex=3600)
    finally:
        client.close()
    log.info("worker_heartbeat_recorded", at=now)
    return now


@shared_task(name="commerce.tasks.purge_idempotency_keys")
def purge_idempotency_keys() -> int:
    """Delete idempotency keys past their expiry; safe to run twice."""
    from commerce.idempotency import purge_expired_keys

    deleted = purge_expired_keys()
    log.info("idempotency_keys_purged", deleted=deleted)
    return deleted

"""A real Celery worker, with Redis as broker, runs the housekeeping task."""
import os
import subprocess
import sys
import time

import pytest
import redis
from django.conf import settings

from commerce.tasks import HEARTBEAT_KEY, record_worker_heartbeat
from tests.services import REPO


@pytest.fixture
def celery_worker_process():
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "commerce", "worker", "--pool", "solo", "--loglevel", "WARNING"],
        cwd=REPO,
        env={**os.environ, "LOG_FORMAT": "console"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    yield worker
    worker.terminate()
    try:
        worker.wait(timeout=20)
    except subprocess.TimeoutExpired:
        worker.kill()


def test_heartbeat_runs_on_real_worker(celery_worker_process):
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.delete(HEARTBEAT_KEY)
    sent_at = time.time()

    result = record_worker_heartbeat.delay()
    recorded_at = result.get(timeout=60)

    assert recorded_at >= sent_at
    assert float(client.get(HEARTBEAT_KEY)) == pytest.approx(recorded_at)


def test_heartbeat_safe_to_run_twice():
    first = record_worker_heartbeat.apply().get()
    second = record_worker_heartbeat.apply().get()

    assert second >= first

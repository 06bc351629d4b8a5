"""SIGKILL on a `run_consumer analytics` process in the middle of a batch, then a restart: nothing is counted twice.

To kill it at a known point, the test holds a row lock on the daily SKU row
that one order in the middle of the batch updates. The consumer applies other
events, then blocks inside that order's transaction, and is killed there.
PostgreSQL rolls that transaction back, and the restarted consumer starts
from the committed offsets.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal

import psycopg
import pytest
from django.db import connections

from analytics.models import AppliedEvent, OrderEventFact
from analytics.reconciliation.drift import aggregate_drift
from tests.analytics.conftest import (
    BOTH_DATABASES,
    order_totals,
    pay,
    place_order,
    publish_outbox,
    run_analytics,
    stocked_product,
)
from tests.services import REPO

pytestmark = [
    pytest.mark.django_db(transaction=True, databases=BOTH_DATABASES),
    pytest.mark.usefixtures("fast_consumers"),
]

BATCH_ORDERS = 20


def database_url(alias: str) -> str:
    settings_dict = connections[alias].settings_dict
    return (
        f"postgres://{settings_dict['USER']}:{settings_dict['PASSWORD']}@{settings_dict['HOST']}:{settings_dict['PORT']}"
        f"/{settings_dict['NAME']}"
    )


def wait_for(predicate, *, timeout: float, description: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {description}")


def lock_waiters(database: str) -> int:
    with connections["analytics"].cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'", [database]
        )
        return cursor.fetchone()[0]


def test_killed_mid_batch_counts_once(kafka_producer, kafka_topic_prefix, tmp_path, reconcile_command):
    blocking = stocked_product(price="7.00")
    other = stocked_product(price="3.00")
    pay(place_order((blocking, 1)))
    publish_outbox(kafka_producer)

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.analytics.consumer_process_settings",
        "DATABASE_URL": database_url("default"),
        "ANALYTICS_DATABASE_URL": database_url("analytics"),
        "KAFKA_TOPIC_PREFIX": kafka_topic_prefix,
        "LOG_FORMAT": "console",
    }
    log_file = (tmp_path / "consumer.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "manage.py", "run_consumer", "analytics"], cwd=REPO, env=env, stdout=log_file, stderr=log_file
    )
    analytics_name = connections["analytics"].settings_dict["NAME"]
    lock = psycopg.connect(database_url("analytics"))
    try:
        wait_for(lambda: AppliedEvent.objects.count() == 2, timeout=60, description="the first order's two events")

        # Locked until after the kill: one order of the batch updates this row, so its transaction blocks there.
        lock.execute("SELECT 1 FROM analytics_dailyskustats WHERE sku = %s FOR UPDATE", [blocking.sku])
        # The blocking order sits in the middle, so its partition holds unapplied events after it.
        for _ in range(BATCH_ORDERS // 2):
            pay(place_order((other, 1)))
        pay(place_order((blocking, 1)))
        for _ in range(BATCH_ORDERS - BATCH_ORDERS // 2):
            pay(place_order((other, 1)))
        batch = publish_outbox(kafka_producer)
        wait_for(lambda: lock_waiters(analytics_name) == 1, timeout=60, description="the consumer to block on the locked row")
        applied_before_kill = AppliedEvent.objects.count()

        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        lock.rollback()
        lock.close()
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        log_file.close()

    total_events = 2 + len(batch)
    assert 2 < applied_before_kill < total_events, f"the kill did not land inside the batch ({applied_before_kill})"

    # The restarted member gets no partitions until the killed member's 6 s session expires,
    # and the idle time only restarts at that assignment, so it must outlast the session.
    output = run_analytics(idle_timeout=9)

    assert "dead_lettered" not in output
    assert AppliedEvent.objects.count() == total_events
    assert OrderEventFact.objects.count() == total_events
    totals = order_totals()
    orders = BATCH_ORDERS + 2
    assert (totals["orders_placed"], totals["orders_paid"]) == (orders, orders)
    assert totals["revenue"] == Decimal("7.00") * 2 + Decimal("3.00") * BATCH_ORDERS
    today = datetime.now(UTC).date()
    assert aggregate_drift(today, today) == []
    status, report = reconcile_command()
    assert status == 0, report
    assert "Unexplained: 0 order(s)" in report
    assert "Lag: 0 order(s)" in report

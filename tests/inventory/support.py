"""Helpers for inventory tests: invariant checks and a thread runner for races against PostgreSQL."""
from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import Sum

from inventory.models import Reservation, ReservationLine, StockItem, StockMovement
from inventory.selectors import stock_drift


def assert_invariants() -> None:
    """Assert every invariant an audit checks at a quiet moment, one condition per assert."""
    assert not StockItem.objects.filter(on_hand__lt=0).exists()
    assert not StockItem.objects.filter(reserved__lt=0).exists()
    for item in StockItem.objects.all():
        active_lines = ReservationLine.objects.filter(sku=item.sku, reservation__status=Reservation.Status.ACTIVE)
        ledger = StockMovement.objects.filter(sku=item.sku)
        assert item.reserved <= item.on_hand, item.sku
        assert item.reserved == (active_lines.aggregate(total=Sum("quantity"))["total"] or 0), item.sku
        assert item.on_hand == (ledger.aggregate(total=Sum("quantity"))["total"] or 0), item.sku
    assert stock_drift() == []


@dataclass
class Outcome:
    value: Any = None
    error: BaseException | None = None


def run_concurrently(worker: Callable[..., Any], calls: Sequence[tuple], *, timeout: float = 120) -> list[Outcome]:
    """Run `worker(*args)` for every tuple in `calls`, each in its own thread and database connection.

    Every thread connects first and then waits at a barrier, so the calls hit
    PostgreSQL together. Returns one Outcome per call, in order.
    """
    barrier = threading.Barrier(len(calls))
    outcomes = [Outcome() for _ in calls]

    def run(index: int, args: tuple) -> None:
        try:
            connection.ensure_connection()
            barrier.wait(timeout=timeout)
            outcomes[index].value = worker(*args)
        except BaseException as exc:  # noqa: BLE001 - the test thread reports every failure
            outcomes[index].error = exc
        finally:
            # Each thread owns its connection. Left open, those connections would
            # use up the server's 100 over a suite and block test DB teardown.
            connection.close()

    threads = [threading.Thread(target=run, args=(index, args)) for index, args in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    stuck = [thread.name for thread in threads if thread.is_alive()]
    assert stuck == [], f"threads still running after {timeout}s: {stuck}"
    return outcomes

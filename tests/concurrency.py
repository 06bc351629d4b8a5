"""Run callables at the same moment in threads, each with its own PostgreSQL connection."""
from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.db import connections


def run_concurrently(calls: list[Callable[[], Any]], *, timeout: float = 60) -> list[Any]:
    """Start every call behind one barrier and return their results (or raised exceptions) in order."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], Any]) -> Any:
        try:
            barrier.wait(timeout=timeout)
            return call()
        except Exception as exc:  # noqa: BLE001 - the test inspects each outcome.
            return exc
        finally:
            # Each thread opened its own connection; close it so the test database can be dropped.
            connections.close_all()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls, timeout=timeout * 2))

"""Measure reservations per second on one hot SKU: through reserve() and against raw SQL ceilings.

Three phases take turns against the same PostgreSQL database, --rounds times
each for --duration seconds, with --workers processes (one connection each)
that all hit the same stock row:

  reserve()         inventory.services.reserve, one unit per call, with its
                    header and line inserts, as checkout calls it
  conditional       raw psycopg loop: the conditional UPDATE that reserve()
                    runs, then COMMIT (the ceiling for this row)
  select-for-update raw psycopg loop: SELECT ... FOR UPDATE, a check in
                    Python, UPDATE, COMMIT (the strategy reserve() does not use)

Usage, from the repository root, with a migrated database:

    DATABASE_URL=postgres://... .venv/bin/python bench/inventory_hot_sku.py --workers 8 --duration 4 --rounds 3

The script creates a SKU named bench-hot-<run id> with 10^9 units, so the row
never runs out, and deletes that SKU's rows again at the end. The raw phases
raise `reserved` without reservation rows, so a run that is killed midway
leaves drift that `reconcile_inventory` reports: run it on a scratch database.
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

CONDITIONAL_UPDATE = (
    "UPDATE inventory_stockitem SET reserved = reserved + 1, updated_at = now() "
    "WHERE sku = %s AND on_hand >= reserved + 1"
)


def setup_django(log_level: str) -> None:
    sys.path.insert(0, str(REPO))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "commerce.settings")
    os.environ["LOG_LEVEL"] = log_level
    import django

    django.setup()


def run_reserve(sku: str, worker: int, deadline: float) -> list[float]:
    from datetime import timedelta

    from inventory.services import reserve

    run = uuid.uuid4().hex[:8]
    latencies = []
    while time.monotonic() < deadline:
        started = time.perf_counter()
        reserve(lines=[(sku, 1)], reference=f"bench:{run}:{worker}:{len(latencies)}", ttl=timedelta(hours=1))
        latencies.append(time.perf_counter() - started)
    return latencies


def run_conditional(sku: str, deadline: float) -> list[float]:
    import psycopg
    from django.conf import settings

    latencies = []
    with psycopg.connect(_conninfo(settings.DATABASES["default"])) as conn:
        while time.monotonic() < deadline:
            started = time.perf_counter()
            cursor = conn.execute(CONDITIONAL_UPDATE, [sku])
            if cursor.rowcount != 1:
                raise RuntimeError(f"{sku} ran out of stock during the benchmark.")
            conn.commit()
            latencies.append(time.perf_counter() - started)
    return latencies


def run_select_for_update(sku: str, deadline: float) -> list[float]:
    import psycopg
    from django.conf import settings

    latencies = []
    with psycopg.connect(_conninfo(settings.DATABASES["default"])) as conn:
        while time.monotonic() < deadline:
            started = time.perf_counter()
            on_hand, reserved = conn.execute(
                "SELECT on_hand, reserved FROM inventory_stockitem WHERE sku = %s FOR UPDATE", [sku]
            ).fetchone()
            if on_hand - reserved < 1:
                raise RuntimeError(f"{sku} ran out of stock during the benchmark.")
            conn.execute(
                "UPDATE inventory_stockitem SET reserved = reserved + 1, updated_at = now() WHERE sku = %s", [sku]
            )
            conn.commit()
            latencies.append(time.perf_counter() - started)
    return latencies


PHASES = ("reserve()", "conditional", "select-for-update")


def worker_main(sku: str, worker: int, rounds: int, duration: float, log_level: str, barrier, results) -> None:
    setup_django(log_level)
    # Connect and import before the first barrier, so start-up cost stays out of the measured windows.
    from django.db import connection

    connection.ensure_connection()
    import inventory.services  # noqa: F401 - warms the import before the clock starts

    runners = {
        "reserve()": lambda deadline: run_reserve(sku, worker, deadline),
        "conditional": lambda deadline: run_conditional(sku, deadline),
        "select-for-update": lambda deadline: run_select_for_update(sku, deadline),
    }
    for round_number in range(rounds):
        for phase in PHASES:
            barrier.wait(timeout=120)
            latencies = runners[phase](time.monotonic() + duration)
            results.put((round_number, phase, latencies))
    connection.close()


def run_rounds(*, sku: str, workers: int, rounds: int, duration: float, log_level: str) -> dict:
    """Run every phase `rounds` times, alternating, so a change in machine load hits all phases alike.

    Returns the latencies of each (round, phase) pair, all workers together.
    """
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(workers)
    results = context.Queue()
    processes = [
        context.Process(target=worker_main, args=(sku, worker, rounds, duration, log_level, barrier, results))
        for worker in range(workers)
    ]
    for process in processes:
        process.start()

    latencies: dict[tuple[int, str], list[float]] = {}
    for _ in range(workers * rounds * len(PHASES)):
        round_number, phase, values = results.get(timeout=duration + 180)
        latencies.setdefault((round_number, phase), []).extend(values)
    for process in processes:
        process.join(timeout=30)
    failed = [process.exitcode for process in processes if process.exitcode != 0]
    if failed:
        raise SystemExit(f"{len(failed)} worker(s) failed with exit codes {failed}.")
    return latencies


def summarize(values: list[float], seconds: float) -> dict:
    values = sorted(values)
    return {
        "operations": len(values),
        "per_second": len(values) / seconds,
        "p50_ms": statistics.median(values) * 1000,
        "p99_ms": values[max(int(len(values) * 0.99) - 1, 0)] * 1000,
    }


def _conninfo(database: dict) -> str:
    return (
        f"host={database['HOST']} port={database['PORT']} dbname={database['NAME']} "
        f"user={database['USER']} password={database['PASSWORD']}"
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=8, help="Processes, one connection each (default %(default)s).")
    parser.add_argument("--duration", type=float, default=4.0, help="Seconds per phase and round (default %(default)s).")
    parser.add_argument("--rounds", type=int, default=3, help="Times each phase runs, alternating (default %(default)s).")
    parser.add_argument(
        "--log-level",
        default="WARNING",
        help="LOG_LEVEL for the workers (default %(default)s). INFO logs one line per reservation.",
    )
    args = parser.parse_args()
    if args.workers < 1:
        parser.error(f"--workers must be at least 1, got {args.workers}.")
    if args.rounds < 1:
        parser.error(f"--rounds must be at least 1, got {args.rounds}.")
    if args.duration <= 0:
        parser.error(f"--duration must be positive, got {args.duration}.")
    return args


def main() -> None:
    args = parse_args()
    setup_django(args.log_level)
    from django.conf import settings
    from django.db import connection

    from inventory.services import receive

    sku = f"bench-hot-{uuid.uuid4().hex[:8]}"
    receive(sku=sku, quantity=10**9, reason="hot SKU benchmark", actor="bench/inventory_hot_sku.py")
    database = settings.DATABASES["default"]
    print(f"database {database['HOST']}:{database['PORT']}/{database['NAME']}, sku {sku}")
    print(f"{args.workers} workers, {args.rounds} rounds of {args.duration:g} s per phase, {os.cpu_count()} CPUs")

    try:
        latencies = run_rounds(
            sku=sku, workers=args.workers, rounds=args.rounds, duration=args.duration, log_level=args.log_level
        )
    finally:
        with connection.cursor() as cursor:
            cursor.execute(
                "WITH gone AS (DELETE FROM inventory_reservationline WHERE sku = %s RETURNING reservation_id) "
                "DELETE FROM inventory_reservation WHERE id IN (SELECT reservation_id FROM gone)",
                [sku],
            )
            cursor.execute("DELETE FROM inventory_stockmovement WHERE sku = %s", [sku])
            cursor.execute("DELETE FROM inventory_stockitem WHERE sku = %s", [sku])

    print(f"{'round':<7}{'phase':<20}{'ops/s':>10}{'p50 ms':>10}{'p99 ms':>10}")
    for round_number in range(args.rounds):
        for phase in PHASES:
            row = summarize(latencies[(round_number, phase)], args.duration)
            print(f"{round_number + 1:<7}{phase:<20}{row['per_second']:>10.0f}{row['p50_ms']:>10.2f}{row['p99_ms']:>10.2f}")

    print(f"\nall rounds ({args.rounds * args.duration:g} s per phase)")
    totals = {}
    for phase in PHASES:
        values = [value for round_number in range(args.rounds) for value in latencies[(round_number, phase)]]
        totals[phase] = summarize(values, args.rounds * args.duration)
        row = totals[phase]
        print(f"{phase:<20}{row['operations']:>10} ops{row['per_second']:>10.0f} ops/s   p50 {row['p50_ms']:.2f} ms   p99 {row['p99_ms']:.2f} ms")
    conditional = totals["conditional"]["per_second"]
    print(f"reserve() / conditional UPDATE: {totals['reserve()']['per_second'] / conditional:.2f}")
    print(f"select-for-update / conditional UPDATE: {totals['select-for-update']['per_second'] / conditional:.2f}")


if __name__ == "__main__":
    main()

"""Reservations: hold units for a reference, then sell them (commit) or free them (release, expiry).

Locking for a hot SKU
---------------------
Two ways keep concurrent reservations of one SKU from overselling it:

1. SELECT ... FOR UPDATE the stock row, compare in Python, then UPDATE it.
2. One conditional UPDATE that checks and changes in the same statement::

       UPDATE inventory_stockitem SET reserved = reserved + q
       WHERE sku = s AND on_hand >= reserved + q

`reserve` uses the conditional UPDATE. Reservations of a hot SKU queue on its
row lock, so their throughput is bounded by how long each transaction holds
that lock. The conditional UPDATE holds it from a single statement to COMMIT,
while SELECT ... FOR UPDATE adds a round trip and the Python check while
holding it. It is no less safe. Under READ COMMITTED an UPDATE that waited
for the lock re-evaluates its WHERE clause on the row version the previous
holder committed (PostgreSQL manual, "Read Committed Isolation Level"), so
it never acts on a stale count. The CHECK constraint on `StockItem` rejects
an oversell if the code is ever wrong. The reservation header and lines are
inserted before the stock UPDATE for the same throughput reason: nothing but
COMMIT runs while the hot row is locked.

The cost is that a failed UPDATE returns no numbers. The out-of-stock error
reads them after the rollback, so they may be a moment newer than the
failure. `bench/inventory_hot_sku.py` measures both strategies against
`reserve()`, and `docs/benchmarks.md` records the numbers.

Lock order everywhere: a reservation header first, then stock rows in
ascending SKU order (see `inventory.services.counters`). `reserve` takes no
header lock but inserts the header, and inserts never wait on stock rows.

Grouping
--------
A reservation is a header (reference, status, expiry) with one line per SKU.
State lives only on the header, so commit, release and expiry each lock one
row per reference and a multi-line reservation changes state as a whole.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from datetime import datetime, timedelta

from django.db import DEFAULT_DB_ALIAS, connection, transaction
from django.db.models import Sum
from django.utils import timezone

from commerce.errors import ConflictError, DomainError, NotFoundError
from commerce.logging import get_logger
from inventory.events import record_reservation_event, record_stock_changed
from inventory.models import Reservation, ReservationLine, StockMovement
from inventory.selectors import availability_by_sku
from inventory.services.counters import stock_sell_reserved, stock_try_reserve, stock_unreserve

log = get_logger(__name__)

Status = Reservation.Status

MAX_SKU_LENGTH = ReservationLine._meta.get_field("sku").max_length
MAX_REFERENCE_LENGTH = Reservation._meta.get_field("reference").max_length


@dataclass(frozen=True)
class StockLine:
    """A requested quantity of one SKU."""

    sku: str
    quantity: int


def reserve(*, lines: Iterable[StockLine | tuple[str, int]], reference: str, ttl: timedelta) -> Reservation:
    """Reserve every line for `reference` until `ttl` from now, or nothing at all.

    Lines naming the same SKU are added together. Calling again with the same
    reference and the same lines returns the existing reservation, active or
    committed, without reserving twice and without extending its expiry.

    Raises ConflictError `out_of_stock` (with requested and available units per
    short SKU in `skus`), `reservation_mismatch` when the reference already
    holds other lines, `reservation_released` or `reservation_expired` when the
    reference's reservation has ended, and DomainError for invalid input.
    """
    quantities = _quantities_by_sku(lines)
    _require_reference(reference)
    if not isinstance(ttl, timedelta) or ttl <= timedelta(0):
        raise DomainError("invalid_ttl", f"The reservation time-to-live must be positive, got {ttl!r}.", field="ttl")

    now = timezone.now()
    short_sku = None
    with transaction.atomic():
        reservation = _insert_reservation(reference=reference, expires_at=now + ttl, now=now)
        if reservation is None:
            return _existing_reservation(reference=reference, quantities=quantities)

        ReservationLine.objects.bulk_create(
            [ReservationLine(reservation=reservation, sku=sku, quantity=quantity) for sku, quantity in quantities.items()]
        )
        short_sku = stock_try_reserve(quantities=quantities)
        if short_sku is None:
            _record_transition(reservation, event="reservation_created", skus=sorted(quantities))
        else:
            # Undo the header, the lines and the units already taken from
            # SKUs sorted before the short one: a reservation is all or none.
            transaction.set_rollback(True)

    if short_sku is not None:
        raise _out_of_stock_error(reference=reference, quantities=quantities, short_sku=short_sku)
    return reservation


def commit(*, reference: str, actor: str = "system") -> Reservation:
    """Sell the units reserved for `reference`: both `on_hand` and `reserved` drop, with a sale ledger row per SKU.

    An active reservation whose expiry time has passed can still be committed
    until `expire_due` has claimed it, because its units are still held.
    Committing again is a no-op. Raises NotFoundError `reservation_not_found`
    for an unknown reference, and ConflictError `reservation_released` or
    `reservation_expired` when the units were already freed.
    """
    with transaction.atomic():
        reservation = _lock_reservation(reference)
        if reservation is None:
            raise NotFoundError(
                f"No reservation with reference {reference!r}.", code="reservation_not_found", field="reference"
            )
        if reservation.status == Status.COMMITTED:
            log.info("reservation_commit_repeated", reservation_id=reservation.pk, reference=reference)
            return reservation
        if reservation.status != Status.ACTIVE:
            raise _ended_error(reservation, action="commit")

        quantities = _reserved_quantities(reservation)
        reservation.status = Status.COMMITTED
        reservation.save(update_fields=["status", "updated_at"])
        stock_sell_reserved(quantities=quantities)
        sales = StockMovement.objects.bulk_create(
            [
                StockMovement(
                    sku=sku,
                    kind=StockMovement.Kind.SALE,
                    quantity=-quantity,
                    reason=f"reservation {reference} committed",
                    actor=actor,
                )
                for sku, quantity in sorted(quantities.items())
            ]
        )
        record_stock_changed(sales)
        _record_transition(reservation, event="reservation_committed", skus=sorted(quantities))
    return reservation


def release(*, reference: str) -> Reservation | None:
    """Free the units reserved for `reference`.

    Returns None for a reference that never reserved, and the reservation
    unchanged when it was already released or expired. Raises ConflictError
    `reservation_committed` when its units were already sold.
    """
    with transaction.atomic():
        reservation = _lock_reservation(reference)
        if reservation is None:
            log.info("reservation_release_unknown", reference=reference)
            return None
        if reservation.status in (Status.RELEASED, Status.EXPIRED):
            log.info("reservation_release_repeated", reservation_id=reservation.pk, reference=reference)
            return reservation
        if reservation.status == Status.COMMITTED:
            raise _ended_error(reservation, action="release")

        quantities = _reserved_quantities(reservation)
        reservation.status = Status.RELEASED
        reservation.save(update_fields=["status", "updated_at"])
        stock_unreserve(quantities=quantities)
        _record_transition(reservation, event="reservation_released", skus=sorted(quantities))
    return reservation


def expire_due(*, now: datetime, batch_size: int = 500) -> int:
    """Expire active reservations whose `expires_at` is at or before `now`, in batches of `batch_size`.

    Each batch is its own transaction (a savepoint inside the caller's). Rows
    locked by a concurrent commit, release or sweep are skipped, not waited
    for, so a reservation ends either committed or expired, never both.
    Returns the number of reservations this call expired.
    """
    if batch_size < 1:
        raise DomainError("invalid_batch_size", f"batch_size must be at least 1, got {batch_size}.", field="batch_size")

    total = 0
    # Terminates because `now` is fixed: every batch ends the rows it claimed,
    # so the set of due rows only shrinks, and a short batch means it is empty
    # apart from rows that others hold.
    while True:
        expired = _expire_batch(now=now, batch_size=batch_size)
        total += expired
        if expired < batch_size:
            break

    if total:
        log.info("reservations_expired", count=total, due_before=now.isoformat())
    return total


def _expire_batch(*, now: datetime, batch_size: int) -> int:
    with transaction.atomic():
        due = list(
            Reservation.objects.select_for_update(skip_locked=True)
            .filter(status=Status.ACTIVE, expires_at__lte=now)
            .order_by("expires_at", "id")[:batch_size]
        )
        if not due:
            return 0

        ids = [reservation.pk for reservation in due]
        Reservation.objects.filter(pk__in=ids).update(status=Status.EXPIRED, updated_at=timezone.now())
        totals = (
            ReservationLine.objects.filter(reservation_id__in=ids)
            .values("sku")
            .annotate(total=Sum("quantity"))
            .values_list("sku", "total")
        )
        stock_unreserve(quantities=dict(totals))

        for reservation in due:
            reservation.status = Status.EXPIRED
            _record_transition(reservation, event="reservation_expired")
    return len(due)


def _insert_reservation(*, reference: str, expires_at: datetime, now: datetime) -> Reservation | None:
    """Insert an active reservation header, or return None when `reference` already has one.

    ON CONFLICT DO NOTHING waits for a concurrent insert of the same reference
    to finish, so two racing calls cannot both create a reservation.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO inventory_reservation (reference, status, expires_at, created_at, updated_at)
            VALUES (%s, %s, %s, %s, %s)
            ON CONFLICT (reference) DO NOTHING
            RETURNING id
            """,
            [reference, Status.ACTIVE, expires_at, now, now],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    return Reservation.from_db(
        DEFAULT_DB_ALIAS,
        ["id", "reference", "status", "expires_at", "created_at", "updated_at"],
        [row[0], reference, Status.ACTIVE, expires_at, now, now],
    )


def _existing_reservation(*, reference: str, quantities: dict[str, int]) -> Reservation:
    reservation = Reservation.objects.get(reference=reference)
    if reservation.status in (Status.RELEASED, Status.EXPIRED):
        raise _ended_error(reservation, action="reserve")

    reserved = _reserved_quantities(reservation)
    if reserved != quantities:
        raise ConflictError(
            "reservation_mismatch",
            f"Reference {reference!r} already reserves other lines.",
            hint="Use a new reference for a different set of lines, or release this one first.",
            extra={"reference": reference, "reserved_lines": reserved, "requested_lines": quantities},
        )

    log.info("reservation_reserve_repeated", reservation_id=reservation.pk, reference=reference)
    return reservation


def _lock_reservation(reference: str) -> Reservation | None:
    return Reservation.objects.select_for_update().filter(reference=reference).first()


def _reserved_quantities(reservation: Reservation) -> dict[str, int]:
    return dict(ReservationLine.objects.filter(reservation=reservation).values_list("sku", "quantity"))


def _quantities_by_sku(lines: Iterable[StockLine | tuple[str, int]]) -> dict[str, int]:
    quantities: dict[str, int] = {}
    for line in lines:
        sku, quantity = (line.sku, line.quantity) if isinstance(line, StockLine) else line
        if not isinstance(sku, str) or not sku or len(sku) > MAX_SKU_LENGTH:
            raise DomainError(
                "invalid_sku", f"SKU must be a string of 1 to {MAX_SKU_LENGTH} characters, got {sku!r}.", field="lines"
            )
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity <= 0:
            raise DomainError(
                "invalid_quantity", f"Quantity for {sku} must be a positive integer, got {quantity!r}.", field="lines"
            )
        quantities[sku] = quantities.get(sku, 0) + quantity

    if not quantities:
        raise DomainError("invalid_lines", "A reservation needs at least one line.", field="lines")
    return quantities


def _require_reference(reference: str) -> None:
    if not isinstance(reference, str) or not reference or len(reference) > MAX_REFERENCE_LENGTH:
        raise DomainError(
            "invalid_reference",
            f"Reference must be a string of 1 to {MAX_REFERENCE_LENGTH} characters, got {reference!r}.",
            field="reference",
        )


def _out_of_stock_error(*, reference: str, quantities: Mapping[str, int], short_sku: str) -> ConflictError:
    available = availability_by_sku(quantities)
    # The failed SKU is always listed: a concurrent release may have freed
    # units between the failed UPDATE and this read.
    short = [
        {"sku": sku, "requested": quantities[sku], "available": max(available[sku], 0)}
        for sku in sorted(quantities)
        if sku == short_sku or quantities[sku] > available[sku]
    ]
    log.info("reservation_out_of_stock", reference=reference, skus=[line["sku"] for line in short])
    names = ", ".join(f"{line['sku']} ({line['requested']} requested, {line['available']} available)" for line in short)
    return ConflictError(
        "out_of_stock",
        f"Not enough stock to reserve: {names}.",
        hint="Reduce the quantities or remove the listed SKUs, then reserve again.",
        extra={"reference": reference, "skus": short},
    )


def _ended_error(reservation: Reservation, *, action: str) -> ConflictError:
    return ConflictError(
        f"reservation_{reservation.status}",
        f"Cannot {action} reservation {reservation.reference!r}: it is already {reservation.status}.",
        extra={"reference": reservation.reference, "status": reservation.status},
    )


def _record_transition(reservation: Reservation, *, event: str, skus: list[str] | None = None) -> None:
    record_reservation_event(reservation, event=event)
    # The log line waits for COMMIT, so a rolled-back change is never logged as done.
    transaction.on_commit(
        partial(log.info, event, reservation_id=reservation.pk, reference=reservation.reference, skus=skus)
    )

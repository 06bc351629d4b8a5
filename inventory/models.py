"""Inventory tables: stock per SKU, reservations that hold units, and the append-only stock ledger.

SKUs are plain strings, not foreign keys into the catalog: inventory is its own
consistency boundary, and a stock row may outlive or precede its variant.

Invariants that `reconcile_inventory` checks at any quiet moment:
- `StockItem.reserved` equals the sum of the lines of active reservations for the SKU.
- `StockItem.on_hand` equals the sum of `StockMovement.quantity` for the SKU.
"""
from django.db import models
from django.db.models import F, Q


class StockItem(models.Model):
    # One row per SKU means one location. Several locations would add a
    # location column to the unique key and to reservation lines.
    sku = models.CharField(max_length=64, unique=True)
    on_hand = models.IntegerField(default=0)
    reserved = models.IntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            # The database refuses an oversell even if application code is wrong.
            models.CheckConstraint(
                condition=Q(reserved__gte=0) & Q(reserved__lte=F("on_hand")),
                name="stock_reserved_within_on_hand",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.sku}: {self.on_hand} on hand, {self.reserved} reserved"

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


class StockMovement(models.Model):
    """One ledger row per change of on-hand stock; `on_hand` equals the sum of `quantity` per SKU."""

    class Kind(models.TextChoices):
        RECEIPT = "receipt"
        ADJUSTMENT = "adjustment"
        SALE = "sale"
        RETURN = "return"
        # A repair by reconciliation: quantity 0, so the ledger sum stays the
        # truth, and the reason records the counter values before and after.
        RECONCILIATION = "reconciliation"

    sku = models.CharField(max_length=64, db_index=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    quantity = models.IntegerField(help_text="Signed change of on-hand units.")
    reason = models.CharField(max_length=255)
    actor = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=~Q(quantity=0) | Q(kind="reconciliation"),
                name="stock_movement_not_zero",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.quantity:+d} {self.sku}"


class Reservation(models.Model):
    """Units held for one reference (a cart or an order) until they are sold or freed.

    The header carries the state and the lines carry the SKUs, so one row lock
    decides the fate of a whole multi-line reservation: a concurrent commit and
    expiry can never split it into some lines sold and others freed.
    """

    class Status(models.TextChoices):
        ACTIVE = "active"
        COMMITTED = "committed"
        RELEASED = "released"
        EXPIRED = "expired"

    # Unique for the reservation's whole life, so a retried checkout finds the
    # reservation it already made instead of holding the units twice.
    reference = models.CharField(max_length=128, unique=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    expires_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            # The expiry sweep scans only active rows in expiry order.
            models.Index(fields=["expires_at"], condition=Q(status="active"), name="reservation_active_expiry"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["active", "committed", "released", "expired"]),
                name="reservation_status_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"reservation {self.reference} ({self.status})"


class ReservationLine(models.Model):
    reservation = models.ForeignKey(Reservation, on_delete=models.CASCADE, related_name="lines")
    sku = models.CharField(max_length=64, db_index=True)
    quantity = models.IntegerField()

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="reservation_line_positive"),
            models.UniqueConstraint(fields=["reservation", "sku"], name="reservation_line_unique_sku"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.sku}"

"""Inventory tables: on-hand stock per SKU and the append-only stock ledger.

SKUs are plain strings, not foreign keys into the catalog: inventory is its own
consistency boundary, and a stock row may outlive or precede its variant.
"""
from django.db import models
from django.db.models import F, Q


class StockItem(models.Model):
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

    sku = models.CharField(max_length=64, db_index=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    quantity = models.IntegerField(help_text="Signed change of on-hand units.")
    reason = models.CharField(max_length=255)
    actor = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=~Q(quantity=0), name="stock_movement_not_zero"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.quantity:+d} {self.sku}"

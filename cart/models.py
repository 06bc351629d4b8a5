"""Cart tables: PostgreSQL is the source of truth for what a shopper intends to buy."""
import secrets
import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q


def new_cart_token() -> str:
    # 256 bits from the OS generator: a guest cart's only credential.
    return secrets.token_urlsafe(32)


class Cart(models.Model):
    class Status(models.TextChoices):
        OPEN = "open"
        CHECKED_OUT = "checked_out"
        MERGED = "merged"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    token = models.CharField(max_length=64, unique=True, default=new_cart_token, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    merged_into = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # The order this cart became; a plain id, because orders is another app's boundary.
    order_id = models.UUIDField(null=True, blank=True, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            # A customer has one open cart, so logging in on two devices shows the same one.
            models.UniqueConstraint(
                fields=["user"], condition=Q(status="open", user__isnull=False), name="cart_one_open_per_user"
            ),
        ]

    def __str__(self) -> str:
        return str(self.id)


class CartItem(models.Model):
    cart = models.ForeignKey(Cart, on_delete=models.CASCADE, related_name="items")
    sku = models.CharField(max_length=64)
    quantity = models.PositiveIntegerField()
    # The unit price the cart last showed; checkout compares it with the catalog.
    price_seen = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    added_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["added_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["cart", "sku"], name="cart_item_unique_sku"),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="cart_item_quantity_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.sku}"

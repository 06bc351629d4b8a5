"""Order tables and the order state machine.

States and the only legal moves between them:

    pending_payment -> paid -> fulfilled
    pending_payment -> cancelled          (releases the reservation)
    pending_payment -> expired            (the payment window closed)
    paid -> partially_refunded -> refunded
    paid -> refunded

Transitions are optimistic: ConcurrentTransitionMixin makes the UPDATE check
the state it read, so of two concurrent transitions only one commits.
"""
import uuid

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django_fsm import ConcurrentTransitionMixin, FSMField, transition


class OrderState(models.TextChoices):
    PENDING_PAYMENT = "pending_payment"
    PAID = "paid"
    FULFILLED = "fulfilled"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"


class Order(ConcurrentTransitionMixin, models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # A cart becomes at most one order: a second browser tab cannot check out twice.
    cart_id = models.UUIDField(unique=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)
    state = FSMField(default=OrderState.PENDING_PAYMENT, choices=OrderState.choices, protected=True)
    currency = models.CharField(max_length=3)
    subtotal = models.DecimalField(max_digits=12, decimal_places=2)
    total = models.DecimalField(max_digits=12, decimal_places=2)
    refunded_total = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    reservation_reference = models.CharField(max_length=64, unique=True)
    # Bumped on every transition; events carry it as the aggregate version.
    version = models.PositiveIntegerField(default=1)
    payment_due_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(fields=["payment_due_at"], condition=Q(state="pending_payment"), name="order_payment_due_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(total__gte=0), name="order_total_not_negative"),
            models.CheckConstraint(
                condition=Q(refunded_total__gte=0) & Q(refunded_total__lte=F("total")),
                name="order_refunds_within_total",
            ),
        ]

    def __str__(self) -> str:
        return str(self.id)

    # The transition methods only move the state; orders.services writes history,
    # events and side effects in the same transaction.

    @transition(field=state, source=OrderState.PENDING_PAYMENT, target=OrderState.PAID)
    def pay(self) -> None:
        pass

    @transition(field=state, source=OrderState.PAID, target=OrderState.FULFILLED)
    def fulfil(self) -> None:
        pass

    @transition(field=state, source=OrderState.PENDING_PAYMENT, target=OrderState.CANCELLED)
    def cancel(self) -> None:
        pass

    @transition(field=state, source=OrderState.PENDING_PAYMENT, target=OrderState.EXPIRED)
    def expire(self) -> None:
        pass

    @transition(
        field=state,
        source=[OrderState.PAID, OrderState.PARTIALLY_REFUNDED],
        target=OrderState.PARTIALLY_REFUNDED,
    )
    def refund_partially(self) -> None:
        pass

    @transition(field=state, source=[OrderState.PAID, OrderState.PARTIALLY_REFUNDED], target=OrderState.REFUNDED)
    def refund_fully(self) -> None:
        pass


class OrderLine(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    sku = models.CharField(max_length=64)
    product_title = models.CharField(max_length=255)
    variant_title = models.CharField(max_length=255)
    # The catalog price at checkout; later catalog changes never touch it.
    unit_price = models.DecimalField(max_digits=12, decimal_places=2)
    quantity = models.PositiveIntegerField()
    line_total = models.DecimalField(max_digits=12, decimal_places=2)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="order_line_quantity_positive"),
            models.CheckConstraint(condition=Q(unit_price__gte=0), name="order_line_price_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.sku}"


class OrderTransition(models.Model):
    """History row written in the same transaction as the state change."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="history")
    from_state = models.CharField(max_length=32, blank=True)
    to_state = models.CharField(max_length=32)
    actor = models.CharField(max_length=128)
    reason = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.from_state or '-'} -> {self.to_state}"

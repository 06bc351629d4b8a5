"""Tables of the sales projection; the router keeps them in the analytics database.

Two fact tables contain the content of the order events: one row per
applied order event (`OrderEventFact`) and one row per order line
(`OrderLineFact`). The
daily tables hold running sums that the consumer updates in the same
transaction as the facts. `AppliedEvent` is the consumer's deduplication
record. Order ids are plain UUIDs, never foreign keys, because the orders
live in another database.

Days are UTC calendar dates of the event's `occurred_at`.
"""
from django.db import models

MONEY = {"max_digits": 12, "decimal_places": 2}
# Sums of many orders need more digits than one order's total.
MONEY_SUM = {"max_digits": 16, "decimal_places": 2}

# Measures of both daily tables; analytics.contributions computes them from facts.
COUNT_MEASURES = ("orders_placed", "orders_paid", "orders_cancelled", "orders_expired", "orders_refunded")
MONEY_MEASURES = ("revenue", "refunds")
ORDER_MEASURES = COUNT_MEASURES + MONEY_MEASURES
SKU_MEASURES = ORDER_MEASURES + ("units_sold",)


class AppliedEvent(models.Model):
    """An order event the analytics consumer applied, recorded in the transaction of its projection writes.

    The event id and the (order, version) pair are both unique, so neither a
    redelivered event nor a second event id for the same order version is
    applied twice. The row lives beside the projection, so emptying the
    analytics database also deletes these records, and a replay applies
    everything again.
    """

    event_id = models.UUIDField(primary_key=True)
    order_id = models.UUIDField()
    aggregate_version = models.PositiveIntegerField()
    event_type = models.CharField(max_length=64)
    applied_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["order_id", "aggregate_version"], name="analytics_applied_order_version"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.order_id}@{self.aggregate_version}"


class OrderEventFact(models.Model):
    """One applied order event with the order's state and amounts after it."""

    event_id = models.UUIDField(unique=True)
    order_id = models.UUIDField()
    aggregate_version = models.PositiveIntegerField()
    event_type = models.CharField(max_length=64)
    schema_version = models.PositiveSmallIntegerField()
    occurred_at = models.DateTimeField()
    day = models.DateField()
    state = models.CharField(max_length=32)
    currency = models.CharField(max_length=3)
    total = models.DecimalField(**MONEY)
    refunded_total = models.DecimalField(**MONEY)
    # Money the event moved: the order total for order.paid, the refund for order.refunded, zero otherwise.
    amount = models.DecimalField(**MONEY)
    # Kafka position the event was applied from, to trace a fact back to its message.
    topic = models.CharField(max_length=255)
    partition = models.PositiveIntegerField()
    offset = models.PositiveBigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["order_id", "aggregate_version"], name="analytics_fact_order_version"),
        ]
        indexes = [
            models.Index(fields=["day", "event_type"], name="analytics_fact_day_type_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.order_id}@{self.aggregate_version}"


class OrderLineFact(models.Model):
    """One line of a placed order, as order.placed carried it."""

    order_id = models.UUIDField()
    # Position of the line in the event's `lines` array, starting at 0.
    line_number = models.PositiveSmallIntegerField()
    sku = models.CharField(max_length=64)
    # Empty when the event named no category (order.placed v1, or a product without one).
    category = models.CharField(max_length=255, blank=True)
    quantity = models.PositiveIntegerField()
    unit_price = models.DecimalField(**MONEY)
    line_total = models.DecimalField(**MONEY)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["order_id", "line_number"], name="analytics_line_order_number"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.sku} ({self.order_id})"


class DailyOrderStats(models.Model):
    """Order counts and money per UTC day and currency; each order counts once per event type."""

    day = models.DateField()
    currency = models.CharField(max_length=3)
    orders_placed = models.PositiveIntegerField(default=0)
    orders_paid = models.PositiveIntegerField(default=0)
    orders_cancelled = models.PositiveIntegerField(default=0)
    orders_expired = models.PositiveIntegerField(default=0)
    # Orders whose refunds reached their total that day; partial refunds only add to `refunds`.
    orders_refunded = models.PositiveIntegerField(default=0)
    # Totals of the orders paid that day.
    revenue = models.DecimalField(default=0, **MONEY_SUM)
    # Refund amounts completed that day.
    refunds = models.DecimalField(default=0, **MONEY_SUM)

    class Meta:
        verbose_name_plural = "daily order stats"
        constraints = [
            models.UniqueConstraint(fields=["day", "currency"], name="analytics_daily_order_key"),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.currency}"


class DailySkuStats(models.Model):
    """The same measures per UTC day, currency, category and SKU.

    An order counts once for each SKU it contains, so order counts must not
    be summed across SKUs (DailyOrderStats has the per-order counts). Money
    does add up: revenue is the paid lines' totals, and a refund is split
    over the order's lines in proportion to their totals.
    """

    day = models.DateField()
    currency = models.CharField(max_length=3)
    category = models.CharField(max_length=255, blank=True)
    sku = models.CharField(max_length=64)
    orders_placed = models.PositiveIntegerField(default=0)
    orders_paid = models.PositiveIntegerField(default=0)
    orders_cancelled = models.PositiveIntegerField(default=0)
    orders_expired = models.PositiveIntegerField(default=0)
    orders_refunded = models.PositiveIntegerField(default=0)
    units_sold = models.PositiveIntegerField(default=0)
    revenue = models.DecimalField(default=0, **MONEY_SUM)
    refunds = models.DecimalField(default=0, **MONEY_SUM)

    class Meta:
        verbose_name_plural = "daily SKU stats"
        constraints = [
            models.UniqueConstraint(fields=["day", "currency", "category", "sku"], name="analytics_daily_sku_key"),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.currency} {self.sku}"

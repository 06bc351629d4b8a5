"""Checkout: one PostgreSQL transaction that decides the order.

Inside it: re-price every line from the catalog (never from a cache or the
search index), reserve stock through inventory, create the order and its
lines, close the cart and write `order.placed` to the outbox. The caller
(the API) also saves the idempotency record in this transaction. Any error
rolls all of it back, so there is never an order without its reservation or
a reservation without its order.
"""
from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from cart.models import Cart
from cart.services import cart_lock_for_checkout, cart_mark_checked_out
from catalog.selectors import variant_prices
from commerce.errors import ConflictError
from commerce.logging import get_logger
from commerce.outbox import outbox_write
from inventory import services as inventory
from orders.models import Order, OrderLine, OrderState, OrderTransition

log = get_logger(__name__)


def checkout(
    *, cart: Cart, user: AbstractBaseUser | None, expected_total: Decimal | None, actor: str
) -> Order:
    """Turn an open cart into a pending_payment order with reserved stock.

    Raises ConflictError with code cart_empty, cart_checked_out, cart_merged,
    items_unavailable, mixed_currency, price_changed or out_of_stock; nothing is
    written in any of those cases.
    """
    with transaction.atomic():
        cart = cart_lock_for_checkout(cart=cart)
        items = list(cart.items.all())
        if not items:
            raise ConflictError("cart_empty", "The cart has no items.", hint="Add items before checking out.")

        prices = variant_prices([item.sku for item in items])
        unavailable = [item.sku for item in items if item.sku not in prices or not prices[item.sku].published]
        if unavailable:
            raise ConflictError(
                "items_unavailable",
                f"No longer sold: {', '.join(unavailable)}.",
                extra={"skus": unavailable},
                hint="Remove these items from the cart.",
            )

        currencies = {prices[item.sku].currency for item in items}
        if len(currencies) != 1:
            raise ConflictError("mixed_currency", f"The cart mixes currencies: {', '.join(sorted(currencies))}.")
        currency = currencies.pop()

        total = sum((prices[item.sku].price * item.quantity for item in items), Decimal("0.00"))
        changed = [
            {"sku": item.sku, "price_seen": item.price_seen, "price": prices[item.sku].price}
            for item in items
            if item.price_seen != prices[item.sku].price
        ]
        if changed and expected_total != total:
            raise ConflictError(
                "price_changed",
                "Prices changed since the cart was last shown.",
                extra={"changed_lines": changed, "total": total, "currency": currency},
                hint="Show the new prices, then repeat the checkout with expected_total set to the new total.",
            )

        order_id = uuid.uuid4()
        reference = f"order:{order_id}"
        window = timedelta(seconds=settings.ORDER_PAYMENT_WINDOW_SECONDS)
        # The reservation outlives the payment window by a grace period, so the
        # order's own expiry (which also releases stock) normally acts first, and
        # inventory's expiry sweep only catches reservations whose order is gone.
        inventory.reserve(
            lines=[(item.sku, item.quantity) for item in items],
            reference=reference,
            ttl=window + timedelta(seconds=settings.RESERVATION_GRACE_SECONDS),
        )

        order = Order.objects.create(
            id=order_id,
            cart_id=cart.pk,
            user=user if user is not None and user.is_authenticated else None,
            currency=currency,
            subtotal=total,
            total=total,
            reservation_reference=reference,
            payment_due_at=timezone.now() + window,
        )
        OrderLine.objects.bulk_create(
            [
                OrderLine(
                    order=order,
                    sku=item.sku,
                    product_title=prices[item.sku].product_title,
                    variant_title=prices[item.sku].variant_title,
                    unit_price=prices[item.sku].price,
                    quantity=item.quantity,
                    line_total=prices[item.sku].price * item.quantity,
                )
                for item in items
            ]
        )
        OrderTransition.objects.create(
            order=order, from_state="", to_state=OrderState.PENDING_PAYMENT, actor=actor, reason="checkout"
        )
        cart_mark_checked_out(cart=cart, order_id=order.pk)
        outbox_write(
            event_type="order.placed",
            aggregate_type="order",
            aggregate_id=str(order.pk),
            aggregate_version=order.version,
            payload={
                "order_id": str(order.pk),
                "state": order.state,
                "currency": currency,
                "total": total,
                "lines": [
                    {
                        "sku": item.sku,
                        "quantity": item.quantity,
                        "unit_price": prices[item.sku].price,
                        "category": prices[item.sku].category_slug,
                    }
                    for item in items
                ],
                "payment_due_at": order.payment_due_at.isoformat(),
            },
            # v2 adds each line's category slug, for sales reports per category.
            schema_version=2,
        )

    log.info("order_placed", order_id=str(order.pk), cart_id=str(cart.pk), total=str(total), currency=currency)
    return order

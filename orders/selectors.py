"""Read side of orders."""
from __future__ import annotations

import uuid

from django.contrib.auth.models import AbstractBaseUser

from cart.selectors import cart_token_matches
from commerce.errors import NotFoundError
from orders.models import Order


def order_for_caller(*, order_id: uuid.UUID, user: AbstractBaseUser | None, token: str | None) -> Order:
    """Return the order when the caller owns it (its account, or the token of the cart it came from); 404 otherwise."""
    order = Order.objects.prefetch_related("lines", "history").filter(pk=order_id).first()
    if order is not None:
        if user is not None and user.is_authenticated and (order.user_id == user.pk or user.is_staff):
            return order
        if order.user_id is None and cart_token_matches(cart_id=order.cart_id, token=token):
            return order
    raise NotFoundError(f"No order {order_id}.", code="order_not_found")

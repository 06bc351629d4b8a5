"""Read side of the cart for other apps."""
from __future__ import annotations

import hmac
import uuid

from cart.models import Cart


def cart_token_matches(*, cart_id: uuid.UUID, token: str | None) -> bool:
    """Tell whether `token` is the guest token of cart `cart_id` (constant-time comparison)."""
    if not token:
        return False
    stored = Cart.objects.filter(pk=cart_id).values_list("token", flat=True).first()
    return stored is not None and hmac.compare_digest(stored, token)

"""Read side of payments for other apps."""
from __future__ import annotations

import uuid
from collections.abc import Iterable

from payments.models import PaymentIntent


def order_has_active_payment(*, order_id: uuid.UUID) -> bool:
    return PaymentIntent.objects.filter(order_id=order_id, status=PaymentIntent.Status.PROCESSING).exists()


def orders_with_active_payment(*, order_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
    return set(
        PaymentIntent.objects.filter(order_id__in=list(order_ids), status=PaymentIntent.Status.PROCESSING).values_list(
            "order_id", flat=True
        )
    )

"""Write side of orders: checkout (the committed decision) and the state transitions after it."""
from orders.services.checkout import checkout
from orders.services.transitions import (
    PAID_STATES,
    order_cancel,
    order_expire,
    order_expire_overdue,
    order_fulfil,
    order_lock,
    order_mark_paid,
    order_record_refund,
)

__all__ = [
    "PAID_STATES",
    "checkout",
    "order_cancel",
    "order_expire",
    "order_expire_overdue",
    "order_fulfil",
    "order_lock",
    "order_mark_paid",
    "order_record_refund",
]

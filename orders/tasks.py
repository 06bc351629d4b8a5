"""Celery entry points for orders."""
from celery import shared_task

from orders.services import order_expire_overdue


@shared_task(name="orders.tasks.expire_overdue_orders")
def expire_overdue_orders() -> int:
    """Periodic: expire unpaid orders past their payment window; safe to run twice or concurrently."""
    return order_expire_overdue()

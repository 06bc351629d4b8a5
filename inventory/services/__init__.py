"""Write side of inventory. Other apps import the service functions from this package."""
from inventory.services.reconciliation import ReconciliationResult, reconcile
from inventory.services.reservations import StockLine, commit, expire_due, release, reserve
from inventory.services.stock import adjust, receive, restock, stock_receive_new_skus, stock_set_on_hand

__all__ = [
    "ReconciliationResult",
    "StockLine",
    "adjust",
    "commit",
    "expire_due",
    "receive",
    "reconcile",
    "release",
    "reserve",
    "restock",
    "stock_receive_new_skus",
    "stock_set_on_hand",
]

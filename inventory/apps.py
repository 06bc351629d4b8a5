from django.apps import AppConfig


class InventoryConfig(AppConfig):
    """On-hand stock, reservations and the stock ledger: the source of truth for stock."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "inventory"

from django.apps import AppConfig


class OrdersConfig(AppConfig):
    """Orders, their lines and state history. No features yet."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "orders"

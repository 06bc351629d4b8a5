from django.apps import AppConfig


class CartConfig(AppConfig):
    """The shopper's intended lines, durable in PostgreSQL. No features yet."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "cart"

from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    """Payment intents and provider events. No features yet."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "payments"

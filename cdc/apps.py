from django.apps import AppConfig


class CdcConfig(AppConfig):
    """Moves committed outbox events from PostgreSQL into Kafka. No features yet."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "cdc"

from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "analytics"

    def ready(self) -> None:
        # Registers the consumer under the name "analytics" for run_consumer, replay and replay_dlq.
        from analytics import consumers  # noqa: F401

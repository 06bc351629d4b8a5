from django.apps import AppConfig


class CatalogConfig(AppConfig):
    """Products, variants, prices and categories; every change bumps the product's version."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "catalog"

    def ready(self) -> None:
        # Registers the search-indexer consumer with the cdc consumer registry.
        from catalog import consumers  # noqa: F401

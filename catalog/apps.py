from django.apps import AppConfig


class CatalogConfig(AppConfig):
    """Products, variants, prices and categories; every change bumps the product's version."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "catalog"

"""Database router that keeps the analytics tables in the analytics database and every other table out of it.

The router is the whole isolation contract in code: analytics models read
and write only the `analytics` alias, no relation may cross the two
databases, and migrations create analytics tables only there. Every other
model falls through to `default`, so a storefront request never opens an
analytics connection.
"""
from __future__ import annotations

from django.db.models import Model

ANALYTICS_DATABASE = "analytics"
ANALYTICS_APP_LABEL = "analytics"


def _is_analytics(model_or_instance: type[Model] | Model) -> bool:
    return model_or_instance._meta.app_label == ANALYTICS_APP_LABEL


class AnalyticsRouter:
    def db_for_read(self, model: type[Model], **hints) -> str | None:
        return ANALYTICS_DATABASE if _is_analytics(model) else None

    def db_for_write(self, model: type[Model], **hints) -> str | None:
        return ANALYTICS_DATABASE if _is_analytics(model) else None

    def allow_relation(self, obj1: Model, obj2: Model, **hints) -> bool | None:
        first, second = _is_analytics(obj1), _is_analytics(obj2)
        if first or second:
            return first and second
        return None

    def allow_migrate(self, db: str, app_label: str, model_name: str | None = None, **hints) -> bool | None:
        if app_label == ANALYTICS_APP_LABEL:
            return db == ANALYTICS_DATABASE
        if db == ANALYTICS_DATABASE:
            return False
        return None

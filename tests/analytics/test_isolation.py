"""The analytics database holds only analytics tables, and the storefront never opens it."""
from __future__ import annotations

import uuid

import pytest
from django.db import connections, router
from django.test.utils import CaptureQueriesContext

from analytics.models import DailyOrderStats, OrderEventFact
from analytics.router import AnalyticsRouter
from orders.models import Order
from tests.analytics.conftest import BOTH_DATABASES, place_order, stocked_product


def test_router_sends_analytics_models_to_analytics():
    assert router.db_for_read(OrderEventFact) == "analytics"
    assert router.db_for_write(DailyOrderStats) == "analytics"
    assert router.db_for_read(Order) == "default"
    assert router.db_for_write(Order) == "default"


def test_router_rejects_cross_database_relations():
    routing = AnalyticsRouter()

    assert routing.allow_relation(OrderEventFact(), Order()) is False
    assert routing.allow_relation(Order(), DailyOrderStats()) is False
    assert routing.allow_relation(OrderEventFact(), DailyOrderStats()) is True
    assert routing.allow_relation(Order(), Order()) is None


@pytest.mark.parametrize(
    ("database", "app_label", "allowed"),
    [
        ("analytics", "analytics", True),
        ("default", "analytics", False),
        ("analytics", "orders", False),
        ("analytics", "contenttypes", False),
        ("default", "orders", None),
    ],
)
def test_router_migrations(database, app_label, allowed):
    assert AnalyticsRouter().allow_migrate(database, app_label) is allowed


@pytest.mark.django_db(databases=BOTH_DATABASES)
def test_tables_live_in_their_database():
    analytics_tables = set(connections["analytics"].introspection.table_names())
    default_tables = set(connections["default"].introspection.table_names())

    assert {table for table in analytics_tables if table != "django_migrations"} == {
        "analytics_appliedevent",
        "analytics_ordereventfact",
        "analytics_orderlinefact",
        "analytics_dailyorderstats",
        "analytics_dailyskustats",
    }
    assert not {table for table in default_tables if table.startswith("analytics_")}


@pytest.mark.django_db(databases=BOTH_DATABASES)
def test_storefront_requests_skip_analytics(api_client):
    variant = stocked_product(price="9.00", category=("Kitchen", "Mugs"))

    with CaptureQueriesContext(connections["analytics"]) as analytics_queries:
        assert api_client.get("/api/v1/products/").status_code == 200
        assert api_client.get(f"/api/v1/products/{variant.product.handle}/").status_code == 200
        assert api_client.get("/api/v1/categories/").status_code == 200
        order_id = place_order((variant, 1))
        assert api_client.get(f"/api/v1/orders/{uuid.uuid4()}/").status_code == 404

    assert Order.objects.filter(pk=order_id).exists()
    assert analytics_queries.captured_queries == []

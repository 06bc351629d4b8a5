"""GET /api/v1/reports/sales/: staff only, served from the analytics database only."""
from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.db import connections
from django.test.utils import CaptureQueriesContext

from analytics.api import views
from analytics.models import DailyOrderStats, DailySkuStats
from tests.analytics.conftest import BOTH_DATABASES

pytestmark = pytest.mark.django_db(databases=BOTH_DATABASES)

URL = "/api/v1/reports/sales/"


@pytest.fixture
def staff_client(api_client, staff_user):
    api_client.force_authenticate(staff_user)
    return api_client


@pytest.fixture
def january():
    """Daily rows for 2025-01-05 (a Sunday) to 2025-01-13, in USD, and one EUR day."""
    for day, placed, paid, revenue, refunds in [
        (date(2025, 1, 5), 3, 2, "40.00", "0.00"),
        (date(2025, 1, 6), 4, 3, "55.50", "5.25"),
        (date(2025, 1, 12), 1, 1, "10.00", "0.00"),
        (date(2025, 1, 13), 2, 0, "0.00", "10.00"),
        (date(2025, 2, 1), 7, 7, "70.00", "0.00"),
    ]:
        DailyOrderStats.objects.create(
            day=day, currency="USD", orders_placed=placed, orders_paid=paid, revenue=Decimal(revenue), refunds=Decimal(refunds)
        )
    DailyOrderStats.objects.create(day=date(2025, 1, 6), currency="EUR", orders_placed=1, orders_cancelled=1)
    DailySkuStats.objects.create(
        day=date(2025, 1, 6), currency="USD", category="kitchen-mugs", sku="MUG-1", orders_paid=2, units_sold=5,
        revenue=Decimal("50.00"),
    )
    DailySkuStats.objects.create(
        day=date(2025, 1, 6), currency="USD", category="", sku="TEA-1", orders_paid=1, units_sold=1, revenue=Decimal("5.50")
    )


def report(client, **params):
    response = client.get(URL, params)
    assert response.status_code == 200, response.content
    return response.json()


def test_anonymous_rejected(api_client):
    response = api_client.get(URL, {"from": "2025-01-01", "to": "2025-01-31"})

    # SessionAuthentication comes first and sends no WWW-Authenticate challenge, so DRF returns 403, not 401.
    assert response.status_code == 403
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "not_authenticated"


def test_customer_rejected(api_client):
    customer = get_user_model().objects.create_user(username="shopper", password="shopper-password")
    api_client.force_authenticate(customer)

    response = api_client.get(URL, {"from": "2025-01-01", "to": "2025-01-31"})

    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


@pytest.mark.usefixtures("january")
def test_daily_rows(staff_client):
    body = report(staff_client, **{"from": "2025-01-06", "to": "2025-01-12"})

    assert body["granularity"] == "day"
    assert body["group_by"] is None
    assert body["results"] == [
        {
            "period_start": "2025-01-06",
            "currency": "EUR",
            "orders_placed": 1,
            "orders_paid": 0,
            "orders_cancelled": 1,
            "orders_expired": 0,
            "orders_refunded": 0,
            "revenue": "0.00",
            "refunds": "0.00",
            "net_revenue": "0.00",
        },
        {
            "period_start": "2025-01-06",
            "currency": "USD",
            "orders_placed": 4,
            "orders_paid": 3,
            "orders_cancelled": 0,
            "orders_expired": 0,
            "orders_refunded": 0,
            "revenue": "55.50",
            "refunds": "5.25",
            "net_revenue": "50.25",
        },
        {
            "period_start": "2025-01-12",
            "currency": "USD",
            "orders_placed": 1,
            "orders_paid": 1,
            "orders_cancelled": 0,
            "orders_expired": 0,
            "orders_refunded": 0,
            "revenue": "10.00",
            "refunds": "0.00",
            "net_revenue": "10.00",
        },
    ]


@pytest.mark.usefixtures("january")
def test_weekly_rows_start_monday(staff_client):
    body = report(staff_client, **{"from": "2025-01-05", "to": "2025-01-13", "granularity": "week"})

    usd = [(row["period_start"], row["orders_placed"], row["revenue"], row["net_revenue"]) for row in body["results"] if row["currency"] == "USD"]
    # 2025-01-05 is a Sunday, so it belongs to the week of Monday 2024-12-30.
    assert usd == [
        ("2024-12-30", 3, "40.00", "40.00"),
        ("2025-01-06", 5, "65.50", "60.25"),
        ("2025-01-13", 2, "0.00", "-10.00"),
    ]


@pytest.mark.usefixtures("january")
def test_monthly_rows_clip_to_range(staff_client):
    body = report(staff_client, **{"from": "2025-01-06", "to": "2025-02-28", "granularity": "month"})

    usd = [(row["period_start"], row["orders_placed"], row["revenue"]) for row in body["results"] if row["currency"] == "USD"]
    assert usd == [("2025-01-01", 7, "65.50"), ("2025-02-01", 7, "70.00")]


@pytest.mark.usefixtures("january")
def test_grouped_by_sku(staff_client):
    body = report(staff_client, **{"from": "2025-01-06", "to": "2025-01-06", "group_by": "sku"})

    assert [(row["category"], row["sku"], row["units_sold"], row["revenue"]) for row in body["results"]] == [
        (None, "TEA-1", 1, "5.50"),
        ("kitchen-mugs", "MUG-1", 5, "50.00"),
    ]


@pytest.mark.usefixtures("january")
def test_grouped_by_category(staff_client):
    body = report(staff_client, **{"from": "2025-01-06", "to": "2025-01-06", "group_by": "category"})

    assert [(row["category"], row["orders_paid"]) for row in body["results"]] == [(None, 1), ("kitchen-mugs", 2)]
    assert all("sku" not in row for row in body["results"])


@pytest.mark.usefixtures("january")
def test_queries_only_analytics_database(staff_client):
    with CaptureQueriesContext(connections["default"]) as default_queries:
        with CaptureQueriesContext(connections["analytics"]) as analytics_queries:
            report(staff_client, **{"from": "2025-01-01", "to": "2025-01-31", "granularity": "week"})

    assert default_queries.captured_queries == []
    assert len(analytics_queries.captured_queries) == 1


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"to": "2025-01-31"}, "from"),
        ({"from": "2025-01-01"}, "to"),
        ({"from": "2025-02-30", "to": "2025-03-01"}, "from"),
        ({"from": "2025-01-01", "to": "January"}, "to"),
        ({"from": "2025-01-31", "to": "2025-01-01"}, "to"),
        ({"from": "2025-01-01", "to": "2025-01-31", "granularity": "hour"}, "granularity"),
        ({"from": "2025-01-01", "to": "2025-01-31", "group_by": "customer"}, "group_by"),
        ({"from": "2024-01-01", "to": "2025-01-01"}, "from"),
    ],
)
def test_invalid_parameters_rejected(staff_client, params, field):
    response = staff_client.get(URL, params)

    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "validation_error"
    assert body["field"] == field


@pytest.mark.usefixtures("january")
def test_too_many_rows_rejected(staff_client, monkeypatch):
    monkeypatch.setattr(views, "MAX_ROWS", 2)

    response = staff_client.get(URL, {"from": "2025-01-01", "to": "2025-01-31"})

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "report_too_large"
    assert body["field"] == "from"


def test_year_of_days_accepted(staff_client):
    body = report(staff_client, **{"from": "2024-01-01", "to": "2024-12-31"})

    assert body["results"] == []

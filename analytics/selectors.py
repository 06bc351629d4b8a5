"""Read side of the projection: sales reports from the daily tables, in the analytics database only."""
from __future__ import annotations

from datetime import date

from django.db.models import F, Sum
from django.db.models.functions import TruncMonth, TruncWeek

from analytics.models import ORDER_MEASURES, SKU_MEASURES, DailyOrderStats, DailySkuStats

GRANULARITIES = ("day", "week", "month")
GROUPINGS = ("category", "sku")

# Weeks start on Monday (PostgreSQL date_trunc follows ISO 8601); months on the 1st.
_PERIOD = {"day": F("day"), "week": TruncWeek("day"), "month": TruncMonth("day")}


def sales_report(*, start: date, end: date, granularity: str, group_by: str | None = None, limit: int) -> list[dict]:
    """Sum the daily tables from `start` to `end` (UTC days, inclusive) per period and currency.

    A week or month that begins before `start` or ends after `end` sums only
    the days inside the range, and is labelled with its first day.
    `group_by` adds the category, or the category and SKU, to each row; order
    counts per SKU count an order once for every SKU it contains. Returns at
    most `limit` + 1 rows, so the caller can tell when the report was cut.
    """
    if group_by is None:
        model, measures, dimensions = DailyOrderStats, ORDER_MEASURES, ()
    else:
        model, measures = DailySkuStats, SKU_MEASURES
        dimensions = ("category",) if group_by == "category" else ("category", "sku")

    rows = (
        model.objects.filter(day__gte=start, day__lte=end)
        .annotate(period=_PERIOD[granularity])
        .values("period", "currency", *dimensions)
        .annotate(**{measure: Sum(measure) for measure in measures})
        .order_by("period", "currency", *dimensions)
    )[: limit + 1]

    report = []
    for row in rows:
        row["net_revenue"] = row["revenue"] - row["refunds"]
        report.append(row)
    return report

from datetime import timedelta

from rest_framework import serializers

from analytics.selectors import GRANULARITIES, GROUPINGS

# Maximum range in days per granularity, which bounds the rows of one report per currency.
MAX_RANGE_DAYS = {"day": 366, "week": 5 * 366, "month": 10 * 366}


class SalesReportQuerySerializer(serializers.Serializer):
    """Query parameters of GET /api/v1/reports/sales/: from and to are UTC days, both included."""

    to = serializers.DateField()
    granularity = serializers.ChoiceField(choices=GRANULARITIES, default="day")
    group_by = serializers.ChoiceField(choices=GROUPINGS, required=False)

    def get_fields(self):
        fields = super().get_fields()
        # "from" is a Python keyword, so it cannot be a class attribute.
        fields["from"] = serializers.DateField()
        return fields

    def validate(self, attrs):
        start, end, granularity = attrs["from"], attrs["to"], attrs["granularity"]
        if start > end:
            raise serializers.ValidationError({"to": f"must not be before from ({start})."})
        limit = MAX_RANGE_DAYS[granularity]
        if end - start >= timedelta(days=limit):
            raise serializers.ValidationError(
                {"from": f"the range may span at most {limit} days with granularity {granularity}; use a shorter "
                 "range or a coarser granularity."}
            )
        return attrs


class SalesRowSerializer(serializers.Serializer):
    """One report row; category, sku and units_sold appear only when the report is grouped."""

    period_start = serializers.DateField(source="period")
    currency = serializers.CharField()
    category = serializers.CharField(required=False)
    sku = serializers.CharField(required=False)
    orders_placed = serializers.IntegerField()
    orders_paid = serializers.IntegerField()
    orders_cancelled = serializers.IntegerField()
    orders_expired = serializers.IntegerField()
    orders_refunded = serializers.IntegerField()
    units_sold = serializers.IntegerField(required=False)
    revenue = serializers.DecimalField(max_digits=16, decimal_places=2)
    refunds = serializers.DecimalField(max_digits=16, decimal_places=2)
    net_revenue = serializers.DecimalField(max_digits=16, decimal_places=2)

    def to_representation(self, instance):
        data = super().to_representation(instance)
        # The empty category contains the lines whose event had none (order.placed v1).
        if data.get("category") == "":
            data["category"] = None
        return data

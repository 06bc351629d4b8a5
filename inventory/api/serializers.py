"""Request and response shapes of the staff inventory API."""
from rest_framework import serializers

from inventory.models import ReservationLine, StockItem

# The counters are PostgreSQL `integer` columns.
MAX_DELTA = 2**31 - 1


class NonZeroIntegerField(serializers.IntegerField):
    """An integer that must arrive as a JSON integer: strings, floats, booleans and zero are invalid."""

    default_error_messages = {"zero": "Must not be zero."}

    def to_internal_value(self, data):
        # DRF's IntegerField would accept "5" and 5.0, but a stock delta must arrive exact.
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        if data == 0:
            self.fail("zero")
        return super().to_internal_value(data)


class AdjustmentRequestSerializer(serializers.Serializer):
    sku = serializers.CharField(max_length=64)
    delta = NonZeroIntegerField(min_value=-MAX_DELTA, max_value=MAX_DELTA)
    reason = serializers.CharField(max_length=255)


class StockLevelSerializer(serializers.ModelSerializer):
    available = serializers.IntegerField(read_only=True)

    class Meta:
        model = StockItem
        fields = ["sku", "on_hand", "reserved", "available", "updated_at"]


class ActiveReservationSerializer(serializers.ModelSerializer):
    reference = serializers.CharField(source="reservation.reference")
    expires_at = serializers.DateTimeField(source="reservation.expires_at")
    created_at = serializers.DateTimeField(source="reservation.created_at")

    class Meta:
        model = ReservationLine
        fields = ["reference", "quantity", "expires_at", "created_at"]

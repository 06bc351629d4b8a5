from rest_framework import serializers

from orders.models import Order, OrderLine, OrderTransition


class CheckoutSerializer(serializers.Serializer):
    cart_id = serializers.UUIDField()
    expected_total = serializers.DecimalField(max_digits=12, decimal_places=2, required=False, allow_null=True)


class CancelSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=255, required=False, default="cancelled by the shopper")


class OrderLineSerializer(serializers.ModelSerializer):
    class Meta:
        model = OrderLine
        fields = ["sku", "product_title", "variant_title", "unit_price", "quantity", "line_total"]


class OrderTransitionSerializer(serializers.ModelSerializer):
    class Meta:
        model = OrderTransition
        fields = ["from_state", "to_state", "actor", "reason", "created_at"]


class OrderSerializer(serializers.ModelSerializer):
    lines = OrderLineSerializer(many=True, read_only=True)
    history = OrderTransitionSerializer(many=True, read_only=True)

    class Meta:
        model = Order
        fields = [
            "id",
            "state",
            "currency",
            "subtotal",
            "total",
            "refunded_total",
            "payment_due_at",
            "version",
            "lines",
            "history",
            "created_at",
            "updated_at",
        ]

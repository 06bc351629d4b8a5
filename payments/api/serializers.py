from rest_framework import serializers

from payments.models import PaymentIntent, Refund


class RestockLineSerializer(serializers.Serializer):
    sku = serializers.CharField(max_length=64)
    quantity = serializers.IntegerField(min_value=1)


class RefundRequestSerializer(serializers.Serializer):
    amount = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=0)
    reason = serializers.CharField(max_length=255, required=False, default="")
    restock = RestockLineSerializer(many=True, required=False, default=list)


class PaymentSerializer(serializers.ModelSerializer):
    class Meta:
        model = PaymentIntent
        fields = ["id", "order_id", "amount", "currency", "status", "failure_code", "created_at"]


class RefundSerializer(serializers.ModelSerializer):
    class Meta:
        model = Refund
        fields = ["id", "order_id", "amount", "currency", "status", "reason", "restock", "created_at"]

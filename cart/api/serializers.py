from rest_framework import serializers

from cart.services import CartSnapshot


class AddItemSerializer(serializers.Serializer):
    sku = serializers.CharField(max_length=64)
    quantity = serializers.IntegerField()


class UpdateItemSerializer(serializers.Serializer):
    quantity = serializers.IntegerField()


def cart_representation(snapshot: CartSnapshot, *, include_token: bool = False) -> dict:
    cart = snapshot.cart
    body = {
        "id": str(cart.pk),
        "status": cart.status,
        "currency": snapshot.currency,
        "total": str(snapshot.total),
        "items": [
            {
                "id": line.item_id,
                "sku": line.sku,
                "quantity": line.quantity,
                "product_title": line.product_title,
                "variant_title": line.variant_title,
                "product_slug": line.product_handle,
                "unit_price": str(line.unit_price) if line.unit_price is not None else None,
                "line_total": str(line.line_total) if line.line_total is not None else None,
                "available": line.available,
                "purchasable": line.purchasable,
            }
            for line in snapshot.lines
        ],
        "order_id": str(cart.order_id) if cart.order_id else None,
        "updated_at": cart.updated_at.isoformat(),
    }
    if include_token:
        # Shown once, at creation: the guest's only credential for this cart.
        body["token"] = cart.token
    return body

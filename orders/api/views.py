"""Checkout and order endpoints: thin layers over orders.services."""
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from cart.services import cart_get_for_caller
from commerce.api import cart_token, respond_idempotently
from orders.api.serializers import CancelSerializer, CheckoutSerializer, OrderSerializer
from orders.models import Order
from orders.selectors import order_for_caller
from orders.services import checkout, order_cancel, order_fulfil


def _actor(request: Request) -> str:
    return f"user:{request.user.pk}" if request.user.is_authenticated else "guest"


def _order_body(order_id) -> dict:
    order = Order.objects.prefetch_related("lines", "history").get(pk=order_id)
    return OrderSerializer(order).data


class CheckoutView(APIView):
    def post(self, request: Request) -> Response:
        serializer = CheckoutSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        cart = cart_get_for_caller(
            cart_id=serializer.validated_data["cart_id"], token=cart_token(request), user=request.user
        )

        def place_order():
            order = checkout(
                cart=cart,
                user=request.user,
                expected_total=serializer.validated_data.get("expected_total"),
                actor=_actor(request),
            )
            return 201, _order_body(order.pk)

        response = respond_idempotently(request, place_order)
        response["Location"] = f"/api/v1/orders/{response.data['id']}/"
        return response


class OrderDetailView(APIView):
    def get(self, request: Request, order_id) -> Response:
        order = order_for_caller(order_id=order_id, user=request.user, token=cart_token(request))
        return Response(OrderSerializer(order).data)


class OrderCancelView(APIView):
    def post(self, request: Request, order_id) -> Response:
        order_for_caller(order_id=order_id, user=request.user, token=cart_token(request))
        serializer = CancelSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)

        def cancel():
            order = order_cancel(order_id=order_id, actor=_actor(request), reason=serializer.validated_data["reason"])
            return 200, _order_body(order.pk)

        return respond_idempotently(request, cancel)


class OrderFulfilView(APIView):
    """Staff only: mark a paid order shipped."""

    permission_classes = [IsAdminUser]

    def post(self, request: Request, order_id) -> Response:
        order = order_fulfil(order_id=order_id, actor=_actor(request))
        return Response(_order_body(order.pk))

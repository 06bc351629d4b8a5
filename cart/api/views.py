"""Cart endpoints: thin layers over cart.services."""
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from cart.api.serializers import AddItemSerializer, UpdateItemSerializer, cart_representation
from cart.models import Cart
from cart.services import (
    cart_add_item,
    cart_create,
    cart_get_for_caller,
    cart_remove_item,
    cart_snapshot,
    cart_update_item,
)
from commerce.api import cart_token


def _caller_cart(request: Request, cart_id) -> Cart:
    return cart_get_for_caller(cart_id=cart_id, token=cart_token(request), user=request.user)


class CartListView(APIView):
    def post(self, request: Request) -> Response:
        cart = cart_create(user=request.user)
        body = cart_representation(cart_snapshot(cart=cart), include_token=True)
        return Response(body, status=status.HTTP_201_CREATED)


class CartDetailView(APIView):
    def get(self, request: Request, cart_id) -> Response:
        cart = _caller_cart(request, cart_id)
        return Response(cart_representation(cart_snapshot(cart=cart)))


class CartItemListView(APIView):
    def post(self, request: Request, cart_id) -> Response:
        cart = _caller_cart(request, cart_id)
        serializer = AddItemSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        cart_add_item(cart=cart, **serializer.validated_data)
        cart.refresh_from_db()
        return Response(cart_representation(cart_snapshot(cart=cart)), status=status.HTTP_201_CREATED)


class CartItemDetailView(APIView):
    def patch(self, request: Request, cart_id, item_id: int) -> Response:
        cart = _caller_cart(request, cart_id)
        serializer = UpdateItemSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        cart_update_item(cart=cart, item_id=item_id, **serializer.validated_data)
        cart.refresh_from_db()
        return Response(cart_representation(cart_snapshot(cart=cart)))

    def delete(self, request: Request, cart_id, item_id: int) -> Response:
        cart = _caller_cart(request, cart_id)
        cart_remove_item(cart=cart, item_id=item_id)
        cart.refresh_from_db()
        return Response(cart_representation(cart_snapshot(cart=cart)))

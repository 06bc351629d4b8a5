"""Customer sign-up and login; logging in merges the caller's guest cart into the customer's cart."""
from django.contrib.auth import authenticate, get_user_model, login
from django.db import IntegrityError
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from cart.services import cart_get_for_caller, cart_merge_guest
from commerce.api import cart_token
from commerce.errors import ConflictError, DomainError


class CredentialsSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(min_length=8, max_length=128, write_only=True)


class RegisterView(APIView):
    def post(self, request: Request) -> Response:
        serializer = CredentialsSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            user = get_user_model().objects.create_user(**serializer.validated_data)
        except IntegrityError:
            raise ConflictError("username_taken", "That username is taken.", field="username") from None
        return Response({"id": user.pk, "username": user.username}, status=status.HTTP_201_CREATED)


class LoginView(APIView):
    """Start a session; with X-Cart-Token and cart_id, merge that guest cart into the customer's cart."""

    def post(self, request: Request) -> Response:
        serializer = CredentialsSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = authenticate(request._request, **serializer.validated_data)
        if user is None:
            raise DomainError("invalid_credentials", "Unknown username or wrong password.", status=401)
        login(request._request, user)

        body = {"id": user.pk, "username": user.username, "cart_id": None}
        guest_cart_id = request.data.get("cart_id")
        if guest_cart_id:
            guest = cart_get_for_caller(cart_id=guest_cart_id, token=cart_token(request), user=None)
            body["cart_id"] = str(cart_merge_guest(guest_cart=guest, user=user).pk)
        return Response(body)

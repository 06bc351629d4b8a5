"""A test-only URLconf whose views raise each kind of error the API can produce."""
from django.db import OperationalError
from django.urls import include, path
from rest_framework import exceptions, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from commerce.errors import ConflictError, DomainError, ServiceUnavailableError


class QuantitySerializer(serializers.Serializer):
    quantity = serializers.IntegerField(min_value=1)


class EchoView(APIView):
    """Accepts POST with a JSON body, so 400, 405 and 415 come from DRF itself."""

    def post(self, request):
        serializer = QuantitySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response(serializer.validated_data)


class RaiseView(APIView):
    errors = {
        "conflict": lambda: ConflictError("order_not_payable", "Order 7 is cancelled.", extra={"state": "cancelled"}),
        "unprocessable": lambda: DomainError(
            "idempotency_key_reused", "The key was used with another request.", status=422, field="Idempotency-Key"
        ),
        "throttled": lambda: exceptions.Throttled(wait=7),
        "unavailable": lambda: ServiceUnavailableError("search_unavailable", "Search is down.", retry_after=11),
        "database": lambda: OperationalError("connection refused"),
        "crash": lambda: RuntimeError("boom"),
    }

    def get(self, request, kind):
        raise self.errors[kind]()


def plain_django_crash(request):
    raise RuntimeError("boom outside DRF")


urlpatterns = [
    path(
        "api/test/",
        include(
            [
                path("echo/", EchoView.as_view()),
                path("raise/<str:kind>/", RaiseView.as_view()),
                path("crash/", plain_django_crash),
            ]
        ),
    ),
]

handler404 = "commerce.errors.handler404"
handler500 = "commerce.errors.handler500"

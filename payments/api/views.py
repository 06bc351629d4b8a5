"""Payment, refund and provider webhook endpoints: thin layers over payments.services."""
import json

from django.conf import settings
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from commerce.api import cart_token, respond_idempotently
from commerce.errors import DomainError
from commerce.logging import get_logger
from orders.selectors import order_for_caller
from payments.api.serializers import PaymentSerializer, RefundRequestSerializer, RefundSerializer
from payments.services import payment_start, refund_start
from payments.signatures import InvalidSignature, verify
from payments.webhooks import webhook_apply

log = get_logger(__name__)

SIGNATURE_HEADER = "Provider-Signature"


def _actor(request: Request) -> str:
    return f"user:{request.user.pk}" if request.user.is_authenticated else "guest"


class OrderPaymentView(APIView):
    def post(self, request: Request, order_id) -> Response:
        order_for_caller(order_id=order_id, user=request.user, token=cart_token(request))

        def pay():
            intent = payment_start(order_id=order_id, actor=_actor(request))
            # 202: the capture runs in a worker; poll the order for the outcome.
            return 202, PaymentSerializer(intent).data

        return respond_idempotently(request, pay)


class OrderRefundView(APIView):
    def post(self, request: Request, order_id) -> Response:
        order_for_caller(order_id=order_id, user=request.user, token=cart_token(request))
        serializer = RefundRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)

        def refund():
            created = refund_start(order_id=order_id, actor=_actor(request), **serializer.validated_data)
            return 202, RefundSerializer(created).data

        return respond_idempotently(request, refund)


class ProviderWebhookView(APIView):
    """Receives the provider's signed events; authenticated by the HMAC signature alone."""

    authentication_classes = []
    permission_classes = [AllowAny]

    def post(self, request: Request) -> Response:
        # Verify the raw bytes before parsing: the signature covers the body exactly as sent.
        raw_body = request.body
        try:
            verify(raw_body, request.headers.get(SIGNATURE_HEADER, ""), settings.PAYMENT_WEBHOOK_SECRET)
        except InvalidSignature as exc:
            log.warning("webhook_signature_invalid", reason=str(exc))
            raise DomainError(
                "invalid_signature",
                f"The {SIGNATURE_HEADER} header does not match the body: {exc}",
                field=SIGNATURE_HEADER,
            ) from None

        try:
            event = json.loads(raw_body)
        except ValueError:
            raise DomainError("invalid_webhook", "The webhook body is not valid JSON.") from None

        outcome = webhook_apply(event)
        return Response({"received": True, "outcome": outcome})

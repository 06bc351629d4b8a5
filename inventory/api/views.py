"""Staff inventory endpoints: thin layers over inventory.services and inventory.selectors."""
from rest_framework import status
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from commerce.errors import NotFoundError
from inventory.api.serializers import ActiveReservationSerializer, AdjustmentRequestSerializer, StockLevelSerializer
from inventory.selectors import active_reservations_for_sku, stock_item_get
from inventory.services import adjust


class AdjustmentCreateView(APIView):
    """POST a stock count correction as `{"sku", "delta", "reason"}`, with the staff user as the ledger's actor."""

    permission_classes = [IsAdminUser]

    def post(self, request: Request) -> Response:
        serializer = AdjustmentRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        item = adjust(**serializer.validated_data, actor=request.user.get_username())
        return Response(StockLevelSerializer(item).data, status=status.HTTP_201_CREATED)


class StockItemDetailView(APIView):
    """GET one SKU's counters and the active reservations that hold its units."""

    permission_classes = [IsAdminUser]

    def get(self, request: Request, sku: str) -> Response:
        item = stock_item_get(sku=sku)
        if item is None:
            raise NotFoundError(f"No stock item with SKU {sku!r}.", code="sku_not_found")
        lines = active_reservations_for_sku(sku=sku)
        return Response(
            {**StockLevelSerializer(item).data, "active_reservations": ActiveReservationSerializer(lines, many=True).data}
        )

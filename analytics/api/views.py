"""Staff reports over the analytics projection; every query goes to the analytics database."""
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from analytics.api.serializers import SalesReportQuerySerializer, SalesRowSerializer
from analytics.selectors import sales_report
from commerce.errors import DomainError

# Rows per response; a larger report needs a shorter range or a coarser granularity.
MAX_ROWS = 5_000


class SalesReportView(APIView):
    """GET order counts, revenue and refunds per period and currency: `?from=&to=&granularity=day|week|month`.

    Optional `group_by=category|sku` splits each row further. The numbers
    come from the projection, so they trail the orders by the consumer's lag.
    """

    permission_classes = [IsAdminUser]

    def get(self, request: Request) -> Response:
        query = SalesReportQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        rows = sales_report(
            start=params["from"],
            end=params["to"],
            granularity=params["granularity"],
            group_by=params.get("group_by"),
            limit=MAX_ROWS,
        )
        if len(rows) > MAX_ROWS:
            raise DomainError(
                "report_too_large",
                f"The report has more than {MAX_ROWS} rows.",
                field="from",
                hint="Use a shorter range, a coarser granularity or no group_by.",
            )
        return Response(
            {
                "from": params["from"].isoformat(),
                "to": params["to"].isoformat(),
                "granularity": params["granularity"],
                "group_by": params.get("group_by"),
                "results": SalesRowSerializer(rows, many=True).data,
            }
        )

"""GET /api/v1/search/: full-text product search over the OpenSearch read model."""
from __future__ import annotations

from decimal import Decimal

from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param
from rest_framework.views import APIView

from catalog.search.client import SearchIndexMissing, SearchUnavailable, search_config
from catalog.search.config import max_result_window
from catalog.search.query import SearchParams, search_products
from commerce.errors import ServiceUnavailableError


class SearchParamsSerializer(serializers.Serializer):
    q = serializers.CharField(required=False, allow_blank=True, max_length=200, default="")
    category = serializers.SlugField(required=False, max_length=255, help_text="Category slug; includes descendants.")
    min_price = serializers.DecimalField(required=False, max_digits=12, decimal_places=2, min_value=Decimal("0"))
    max_price = serializers.DecimalField(required=False, max_digits=12, decimal_places=2, min_value=Decimal("0"))
    # A strict choice, because a boolean field would read any unknown word as false.
    in_stock = serializers.ChoiceField(choices=["true", "false"], required=False, help_text="true or false.")
    page = serializers.IntegerField(required=False, min_value=1, default=1)

    def validate(self, attrs):
        low, high = attrs.get("min_price"), attrs.get("max_price")
        if low is not None and high is not None and low > high:
            raise serializers.ValidationError({"max_price": f"Must be at least min_price ({low})."})
        page_size = search_config().page_size
        last_page = max_result_window() // page_size
        if attrs["page"] > last_page:
            raise serializers.ValidationError(
                {"page": f"Must be at most {last_page}: search serves the first {last_page * page_size} hits only."}
            )
        return attrs

    def to_params(self) -> SearchParams:
        data = self.validated_data
        in_stock = data.get("in_stock")
        return SearchParams(
            q=data["q"].strip(),
            category=data.get("category"),
            min_price=data.get("min_price"),
            max_price=data.get("max_price"),
            in_stock=None if in_stock is None else in_stock == "true",
            page=data["page"],
        )


class ProductSearchView(APIView):
    """Search published products by name, description and tags, with filters and facets.

    The index lags PostgreSQL by the time the search indexer needs to apply a
    change, and availability lags further (see docs/read-path.md). Every hit
    carries the catalog `version` it was indexed at, so a client can compare
    it with the product detail.
    """

    # As for product detail: no session read, so responses carry no `Vary: Cookie`.
    authentication_classes = ()

    def get(self, request: Request) -> Response:
        serializer = SearchParamsSerializer(data=request.query_params)
        serializer.is_valid(raise_exception=True)
        params = serializer.to_params()
        config = search_config()
        try:
            page = search_products(params)
        except SearchIndexMissing as error:
            raise ServiceUnavailableError(
                "search_index_missing",
                "Search is unavailable because no search index has been built yet.",
                retry_after=config.retry_after_seconds,
                hint="An operator builds it with `python manage.py reindex_catalog`. Product listing still works.",
            ) from error
        except SearchUnavailable as error:
            raise ServiceUnavailableError(
                "search_unavailable",
                "Search is unavailable because the search server cannot be reached.",
                retry_after=config.retry_after_seconds,
                hint="Retry after the number of seconds in Retry-After. Product listing and detail still work.",
            ) from error

        reachable = min(page.total, max_result_window())
        url = request.build_absolute_uri()
        next_url = replace_query_param(url, "page", params.page + 1) if params.page * config.page_size < reachable else None
        previous_url = None
        if params.page > 1:
            previous_url = (
                remove_query_param(url, "page") if params.page == 2 else replace_query_param(url, "page", params.page - 1)
            )
        return Response(
            {
                "count": page.total,
                "page": params.page,
                "page_size": config.page_size,
                "next": next_url,
                "previous": previous_url,
                "results": page.hits,
                "facets": {"categories": page.categories, "price_ranges": page.price_ranges},
            }
        )

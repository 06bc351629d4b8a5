"""Storefront catalog endpoints: thin layers over catalog.selectors and the product cache."""
import hashlib
import json

from django.conf import settings
from django.http import Http404
from django.utils.http import parse_etags
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response

from catalog.api.filters import ProductFilter
from catalog.api.serializers import CategorySerializer, ProductDetailSerializer, ProductListSerializer
from catalog.cache import ProductDetail, product_detail_get
from catalog.selectors import categories, published_products
from inventory.selectors import availability_by_sku


class CategoryListView(generics.ListAPIView):
    serializer_class = CategorySerializer
    pagination_class = None

    def get_queryset(self):
        return categories()

    def list(self, request: Request, *args, **kwargs) -> Response:
        nodes = list(self.get_queryset())
        parent_slugs = {node.path: node.slug for node in nodes}
        context = {**self.get_serializer_context(), "parent_slugs": parent_slugs}
        serializer = self.get_serializer(nodes, many=True, context=context)
        return Response(serializer.data)


class ProductListView(generics.ListAPIView):
    serializer_class = ProductListSerializer
    filter_backends = [DjangoFilterBackend]
    filterset_class = ProductFilter

    def get_queryset(self):
        return published_products()

    def list(self, request: Request, *args, **kwargs) -> Response:
        queryset = self.filter_queryset(self.get_queryset())
        page = list(self.paginate_queryset(queryset))
        # One stock query for the whole page, whatever its size.
        skus = [variant.sku for product in page for variant in product.variants.all()]
        context = {**self.get_serializer_context(), "availability": availability_by_sku(skus)}
        serializer = self.get_serializer(page, many=True, context=context)
        return self.get_paginated_response(serializer.data)


class ProductDetailView(generics.RetrieveAPIView):
    """One published product, served from the Redis read model (catalog.cache) with HTTP validators.

    The ETag covers the product id, its version and the availability shown, so
    a stock change alters it as a catalog change does. It is weak because the
    promise is equal content, not equal bytes (a proxy may compress the body).
    """

    serializer_class = ProductDetailSerializer
    # The body is the same for every visitor. Authenticating would read the session,
    # which makes Django add `Vary: Cookie`, and then no shared cache could store it.
    authentication_classes = ()

    def retrieve(self, request: Request, *args, slug: str, **kwargs) -> Response:
        detail = product_detail_get(handle=slug)
        if detail is None:
            raise Http404(f"No published product with slug {slug!r}.")

        etag = self.product_etag(detail)
        headers = {"ETag": etag, "Cache-Control": self.cache_control()}
        if self.etag_matches(request.headers.get("If-None-Match", ""), etag):
            return Response(status=status.HTTP_304_NOT_MODIFIED, headers=headers)
        return Response(detail.body, headers=headers)

    @staticmethod
    def product_etag(detail: ProductDetail) -> str:
        stock = [[variant["sku"], variant["available"]] for variant in detail.body["variants"]]
        digest = hashlib.blake2b(json.dumps(stock).encode(), digest_size=8).hexdigest()
        return f'W/"{detail.product_id}-{detail.version}-{digest}"'

    @staticmethod
    def cache_control() -> str:
        max_age = int(getattr(settings, "PRODUCT_CACHE_HTTP_MAX_AGE_SECONDS", 30))
        stale = int(getattr(settings, "PRODUCT_CACHE_HTTP_STALE_WHILE_REVALIDATE_SECONDS", 30))
        return f"public, max-age={max_age}, stale-while-revalidate={stale}"

    @staticmethod
    def etag_matches(if_none_match: str, etag: str) -> bool:
        """Compare an If-None-Match header with `etag` by the weak comparison that RFC 9110 prescribes for it."""
        # Weak comparison ignores the W/ prefix on either side.
        candidates = {tag.removeprefix("W/") for tag in parse_etags(if_none_match)}
        return "*" in candidates or etag.removeprefix("W/") in candidates

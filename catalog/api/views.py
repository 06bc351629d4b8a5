"""Storefront catalog endpoints: thin layers over catalog.selectors."""
from django.http import Http404
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework import generics
from rest_framework.request import Request
from rest_framework.response import Response

from catalog.api.filters import ProductFilter
from catalog.api.serializers import CategorySerializer, ProductDetailSerializer, ProductListSerializer
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
    serializer_class = ProductDetailSerializer

    def retrieve(self, request: Request, *args, slug: str, **kwargs) -> Response:
        product = published_products().filter(handle=slug).first()
        if product is None:
            raise Http404(f"No published product with slug {slug!r}.")
        skus = [variant.sku for variant in product.variants.all()]
        context = {**self.get_serializer_context(), "availability": availability_by_sku(skus)}
        serializer = self.get_serializer(product, context=context)
        return Response(serializer.data)

"""Django admin for catalog editing; every saved change bumps the product's version."""
from django.contrib import admin
from django.db import transaction
from treebeard.admin import TreeAdmin
from treebeard.forms import movenodeform_factory

from catalog.models import Category, Product, ProductImage, ProductVariant
from catalog.services import (
    product_delete,
    product_record_change,
    product_record_event,
    product_refresh_price_range,
)


@admin.register(Category)
class CategoryAdmin(TreeAdmin):
    form = movenodeform_factory(Category)
    list_display = ["name", "slug"]
    search_fields = ["name", "slug"]


class VariantInline(admin.TabularInline):
    model = ProductVariant
    extra = 0
    fields = [
        "sku",
        "position",
        "price",
        "compare_at_price",
        "currency",
        "option1_name",
        "option1_value",
        "option2_name",
        "option2_value",
        "option3_name",
        "option3_value",
        "weight_grams",
    ]


class ImageInline(admin.TabularInline):
    model = ProductImage
    extra = 0


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["title", "handle", "published", "price_min", "price_max", "version", "updated_at"]
    list_filter = ["published", "category"]
    search_fields = ["title", "handle", "variants__sku"]
    readonly_fields = ["version", "price_min", "price_max", "created_at", "updated_at"]
    inlines = [VariantInline, ImageInline]

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        # The product row and its inlines save in one transaction with the version bump.
        with transaction.atomic():
            return super().changeform_view(request, object_id, form_url, extra_context)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        something_changed = form.has_changed() or any(formset.has_changed() for formset in formsets)
        if change and something_changed:
            was_published = form.initial.get("published", form.instance.published)
            product_record_change(product_id=form.instance.pk, was_published=was_published)
        elif not change:
            # A new product starts at version 1; only its price range needs filling in.
            product_refresh_price_range(product_id=form.instance.pk)
            product_record_event(product_id=form.instance.pk, event_type="product.created")

    def delete_model(self, request, obj):
        product_delete(product_id=obj.pk)

    def delete_queryset(self, request, queryset):
        # One transaction per product, each with its product.deleted event.
        for product_id in queryset.values_list("pk", flat=True):
            product_delete(product_id=product_id)

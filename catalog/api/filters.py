"""Query parameters of GET /api/v1/products/."""
import django_filters
from rest_framework.exceptions import ValidationError

from catalog.models import Category
from catalog.selectors import category_with_descendants, filter_in_stock


class ProductFilter(django_filters.FilterSet):
    category = django_filters.CharFilter(method="filter_category", help_text="Category slug; includes descendants.")
    # A product matches a price range when any of its variants is inside it.
    min_price = django_filters.NumberFilter(field_name="price_max", lookup_expr="gte", min_value=0)
    max_price = django_filters.NumberFilter(field_name="price_min", lookup_expr="lte", min_value=0)
    # A strict choice: django-filter's BooleanFilter silently ignores values it cannot parse.
    in_stock = django_filters.ChoiceFilter(
        choices=[("true", "true"), ("false", "false")], method="filter_in_stock", help_text="true or false."
    )
    ordering = django_filters.OrderingFilter(
        fields=(("price_min", "price"), ("title", "name"), ("created_at", "created")),
        help_text="One of price, -price, name, -name, created, -created.",
    )

    def filter_category(self, queryset, name, value):
        category = Category.objects.filter(slug=value).first()
        if category is None:
            raise ValidationError({"category": f"No category with slug {value!r}; list them at /api/v1/categories/."})
        return queryset.filter(category__in=category_with_descendants(category))

    def filter_in_stock(self, queryset, name, value):
        return filter_in_stock(queryset, value == "true")

    def filter_queryset(self, queryset):
        queryset = super().filter_queryset(queryset)
        # Ordering by price or name alone is not unique; the id keeps pages stable.
        ordering = list(queryset.query.order_by) or ["-created_at"]
        return queryset.order_by(*ordering, "id")

"""Catalog tables: the source of truth for products, variants, prices and categories.

Every change to a product, its variants or its images bumps `Product.version`
in the same transaction (see catalog.services.product_bump_version). Read
models (search index, caches, ETags) compare versions to know what is stale.
"""
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q
from treebeard.mp_tree import MP_Node


class Category(MP_Node):
    """A node in the category tree, stored as a materialized path so descendants are one prefix query."""

    name = models.CharField(max_length=255)
    # Slugified full path ("apparel-accessories-jewelry"), unique across the tree
    # because two branches may hold a leaf with the same name.
    slug = models.SlugField(max_length=255, unique=True)

    node_order_by = ["name"]

    class Meta:
        verbose_name_plural = "categories"

    def __str__(self) -> str:
        return self.name


class Product(models.Model):
    handle = models.SlugField(max_length=255, unique=True, help_text="Shopify handle, used as the URL slug.")
    title = models.CharField(max_length=255)
    body_html = models.TextField(blank=True)
    # Plain-text copy of body_html for search and for clients that cannot render HTML.
    body_text = models.TextField(blank=True)
    vendor = models.CharField(max_length=255, blank=True)
    product_type = models.CharField(max_length=255, blank=True)
    tags = ArrayField(models.CharField(max_length=255), default=list, blank=True)
    published = models.BooleanField(default=True)
    category = models.ForeignKey(Category, null=True, blank=True, on_delete=models.SET_NULL, related_name="products")
    seo_title = models.CharField(max_length=255, blank=True)
    seo_description = models.TextField(blank=True)
    # Denormalized from the variants on every version bump, so listing filters and
    # ordering by price use an index instead of aggregating variants per request.
    price_min = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    price_max = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    currency = models.CharField(max_length=3, default="USD")
    version = models.PositiveIntegerField(default=1, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(fields=["published", "price_min", "id"], name="product_pub_price_idx"),
            models.Index(fields=["published", "title", "id"], name="product_pub_title_idx"),
            models.Index(fields=["published", "created_at", "id"], name="product_pub_created_idx"),
        ]

    def __str__(self) -> str:
        return self.title


class ProductVariant(models.Model):
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="variants")
    sku = models.CharField(max_length=64, unique=True)
    position = models.PositiveIntegerField(default=1)
    price = models.DecimalField(max_digits=12, decimal_places=2)
    compare_at_price = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    currency = models.CharField(max_length=3, default="USD")
    weight_grams = models.PositiveIntegerField(default=0)
    weight_unit = models.CharField(max_length=8, blank=True, help_text="Unit the merchant displays (kg, g, lb, oz).")
    option1_name = models.CharField(max_length=255, blank=True)
    option1_value = models.CharField(max_length=255, blank=True)
    option2_name = models.CharField(max_length=255, blank=True)
    option2_value = models.CharField(max_length=255, blank=True)
    option3_name = models.CharField(max_length=255, blank=True)
    option3_value = models.CharField(max_length=255, blank=True)
    barcode = models.CharField(max_length=64, blank=True)
    image_src = models.URLField(max_length=1000, blank=True)
    requires_shipping = models.BooleanField(default=True)
    taxable = models.BooleanField(default=True)

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(price__gte=0), name="variant_price_not_negative"),
            models.CheckConstraint(
                condition=Q(compare_at_price__isnull=True) | Q(compare_at_price__gte=0),
                name="variant_compare_at_price_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return self.sku

    @property
    def options(self) -> list[dict[str, str]]:
        pairs = [
            (self.option1_name, self.option1_value),
            (self.option2_name, self.option2_value),
            (self.option3_name, self.option3_value),
        ]
        return [{"name": name, "value": value} for name, value in pairs if name and value]

    @property
    def title(self) -> str:
        values = [option["value"] for option in self.options]
        return " / ".join(values) if values else "Default"


class ProductImage(models.Model):
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="images")
    src = models.URLField(max_length=1000)
    position = models.PositiveIntegerField(default=1)
    alt_text = models.CharField(max_length=512, blank=True)

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["product", "src"], name="product_image_unique_src"),
        ]

    def __str__(self) -> str:
        return self.src

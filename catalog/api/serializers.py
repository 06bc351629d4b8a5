"""Response shapes of the storefront catalog API."""
from rest_framework import serializers

from catalog.models import Category, Product, ProductImage, ProductVariant


class CategorySerializer(serializers.ModelSerializer):
    parent = serializers.SerializerMethodField()

    class Meta:
        model = Category
        fields = ["slug", "name", "depth", "parent"]

    def get_parent(self, category: Category) -> str | None:
        # Parent slugs come from the view's context, so the listing needs no query per node.
        return self.context["parent_slugs"].get(category.path[: -Category.steplen])


class ImageSerializer(serializers.ModelSerializer):
    class Meta:
        model = ProductImage
        fields = ["src", "position", "alt_text"]


class VariantSerializer(serializers.ModelSerializer):
    title = serializers.CharField(read_only=True)
    options = serializers.ListField(read_only=True)
    available = serializers.SerializerMethodField()

    class Meta:
        model = ProductVariant
        fields = [
            "sku",
            "title",
            "options",
            "price",
            "compare_at_price",
            "currency",
            "weight_grams",
            "weight_unit",
            "image_src",
            "available",
        ]

    def get_available(self, variant: ProductVariant) -> int:
        return max(self.context["availability"].get(variant.sku, 0), 0)


class ProductListSerializer(serializers.ModelSerializer):
    slug = serializers.CharField(source="handle")
    category = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    image = serializers.SerializerMethodField()
    variants = VariantSerializer(many=True, read_only=True)

    class Meta:
        model = Product
        fields = [
            "slug",
            "title",
            "vendor",
            "product_type",
            "category",
            "tags",
            "price_min",
            "price_max",
            "currency",
            "image",
            "variants",
            "version",
        ]

    def get_image(self, product: Product) -> dict | None:
        images = list(product.images.all())
        return ImageSerializer(images[0]).data if images else None


class ProductDetailSerializer(ProductListSerializer):
    images = ImageSerializer(many=True, read_only=True)
    options = serializers.SerializerMethodField()

    class Meta(ProductListSerializer.Meta):
        fields = [
            *ProductListSerializer.Meta.fields,
            "body_html",
            "body_text",
            "images",
            "options",
            "seo_title",
            "seo_description",
            "created_at",
            "updated_at",
        ]

    def get_options(self, product: Product) -> list[dict]:
        """List each option name with its values in variant order, as a product page renders pickers."""
        options: dict[str, list[str]] = {}
        for variant in product.variants.all():
            for option in variant.options:
                values = options.setdefault(option["name"], [])
                if option["value"] not in values:
                    values.append(option["value"])
        return [{"name": name, "values": values} for name, values in options.items()]

"""Write side of the cart. Every function locks the cart row, so two tabs editing one cart serialize.

The cart stays writable when Kafka, OpenSearch, Celery or the payment provider
are down: it touches only PostgreSQL (catalog prices, inventory availability
and its own tables).
"""
from __future__ import annotations

import hmac
import uuid
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction

from cart.models import Cart, CartItem
from catalog.selectors import VariantPrice, variant_prices
from commerce.errors import ConflictError, DomainError, NotFoundError
from commerce.logging import get_logger
from inventory.selectors import availability_by_sku

log = get_logger(__name__)


@dataclass(frozen=True)
class CartLine:
    item_id: int
    sku: str
    quantity: int
    product_title: str
    variant_title: str
    product_handle: str
    unit_price: Decimal | None
    currency: str | None
    line_total: Decimal | None
    available: int
    price_seen: Decimal | None
    purchasable: bool


@dataclass(frozen=True)
class CartSnapshot:
    cart: Cart
    lines: list[CartLine]
    total: Decimal
    currency: str | None


def _max_line_quantity() -> int:
    return settings.CART_MAX_LINE_QUANTITY


def cart_get_for_caller(*, cart_id: uuid.UUID | str, token: str | None, user: AbstractBaseUser | None) -> Cart:
    """Return the cart if the caller owns it (its account, or the guest token); 404 otherwise.

    An unknown cart and someone else's cart look the same, so ids cannot be probed.
    """
    cart = Cart.objects.filter(pk=cart_id).first()
    if cart is None:
        raise NotFoundError(f"No cart {cart_id}.", code="cart_not_found")

    owns_by_account = cart.user_id is not None and user is not None and user.is_authenticated and cart.user_id == user.pk
    owns_by_token = token is not None and hmac.compare_digest(cart.token, token)
    if not (owns_by_account or owns_by_token):
        raise NotFoundError(
            f"No cart {cart_id}.",
            code="cart_not_found",
            hint="Send the cart's token in the X-Cart-Token header, or log in as its owner.",
        )
    return cart


def _lock_open_cart(cart: Cart) -> Cart:
    locked = Cart.objects.select_for_update().get(pk=cart.pk)
    if locked.status == Cart.Status.CHECKED_OUT:
        raise ConflictError(
            "cart_checked_out",
            "This cart was already checked out.",
            extra={"order_id": str(locked.order_id)},
            hint="Start a new cart; the existing order is named in order_id.",
        )
    if locked.status == Cart.Status.MERGED:
        raise ConflictError(
            "cart_merged",
            "This guest cart was merged into a customer's cart and cannot be used again.",
            extra={"merged_into": str(locked.merged_into_id)},
        )
    return locked


def cart_create(*, user: AbstractBaseUser | None) -> Cart:
    """Create a guest cart, or return the customer's open cart (creating it if needed)."""
    if user is None or not user.is_authenticated:
        cart = Cart.objects.create()
        log.info("cart_created", cart_id=str(cart.pk), guest=True)
        return cart

    with transaction.atomic():
        cart = Cart.objects.filter(user=user, status=Cart.Status.OPEN).first()
        if cart is not None:
            return cart
        try:
            with transaction.atomic():
                cart = Cart.objects.create(user=user)
        except IntegrityError:
            # A concurrent request created the customer's cart first.
            return Cart.objects.get(user=user, status=Cart.Status.OPEN)
    log.info("cart_created", cart_id=str(cart.pk), user_id=user.pk, guest=False)
    return cart


def _validate_quantity(quantity: object) -> int:
    limit = _max_line_quantity()
    if not isinstance(quantity, int) or isinstance(quantity, bool) or not 1 <= quantity <= limit:
        raise DomainError(
            "invalid_quantity",
            f"quantity must be a whole number from 1 to {limit}, got {quantity!r}.",
            field="quantity",
        )
    return quantity


def _purchasable_variant(sku: str) -> VariantPrice:
    variant = variant_prices([sku]).get(sku)
    if variant is None or not variant.published:
        raise NotFoundError(f"No product variant with SKU {sku!r}.", code="sku_not_found", field="sku")
    return variant


def cart_add_item(*, cart: Cart, sku: str, quantity: int) -> CartItem:
    """Add `quantity` units of `sku`, adding to the line when the SKU is already in the cart."""
    quantity = _validate_quantity(quantity)
    variant = _purchasable_variant(sku)

    with transaction.atomic():
        cart = _lock_open_cart(cart)
        item = CartItem.objects.filter(cart=cart, sku=sku).first()
        if item is None:
            if cart.items.count() >= settings.CART_MAX_LINES:
                raise DomainError(
                    "cart_too_many_lines",
                    f"A cart holds at most {settings.CART_MAX_LINES} different SKUs.",
                    field="sku",
                )
            item = CartItem.objects.create(cart=cart, sku=sku, quantity=quantity, price_seen=variant.price)
        else:
            item.quantity = _validate_quantity(item.quantity + quantity)
            item.save(update_fields=["quantity", "updated_at"])
        Cart.objects.filter(pk=cart.pk).update(updated_at=item.updated_at)

    log.info("cart_item_added", cart_id=str(cart.pk), sku=sku, quantity=item.quantity)
    return item


def cart_update_item(*, cart: Cart, item_id: int, quantity: int) -> CartItem:
    """Set a line's quantity."""
    quantity = _validate_quantity(quantity)
    with transaction.atomic():
        cart = _lock_open_cart(cart)
        item = CartItem.objects.filter(cart=cart, pk=item_id).first()
        if item is None:
            raise NotFoundError(f"No item {item_id} in this cart.", code="cart_item_not_found")
        item.quantity = quantity
        item.save(update_fields=["quantity", "updated_at"])
    log.info("cart_item_updated", cart_id=str(cart.pk), sku=item.sku, quantity=quantity)
    return item


def cart_remove_item(*, cart: Cart, item_id: int) -> None:
    with transaction.atomic():
        cart = _lock_open_cart(cart)
        deleted, _ = CartItem.objects.filter(cart=cart, pk=item_id).delete()
        if not deleted:
            raise NotFoundError(f"No item {item_id} in this cart.", code="cart_item_not_found")
    log.info("cart_item_removed", cart_id=str(cart.pk), item_id=item_id)


def cart_snapshot(*, cart: Cart, record_prices: bool = True) -> CartSnapshot:
    """Price the cart from the catalog and stock from inventory, as the shopper will see it.

    With `record_prices`, remembers each shown unit price, so checkout can
    tell the shopper when a price moved after they looked.
    """
    items = list(cart.items.all())
    skus = [item.sku for item in items]
    prices = variant_prices(skus)
    available = availability_by_sku(skus)

    lines: list[CartLine] = []
    seen_updates: list[CartItem] = []
    for item in items:
        variant = prices.get(item.sku)
        purchasable = variant is not None and variant.published
        unit_price = variant.price if purchasable else None
        lines.append(
            CartLine(
                item_id=item.pk,
                sku=item.sku,
                quantity=item.quantity,
                product_title=variant.product_title if variant else "",
                variant_title=variant.variant_title if variant else "",
                product_handle=variant.product_handle if variant else "",
                unit_price=unit_price,
                currency=variant.currency if variant else None,
                line_total=unit_price * item.quantity if unit_price is not None else None,
                available=max(available.get(item.sku, 0), 0),
                price_seen=item.price_seen,
                purchasable=purchasable,
            )
        )
        if record_prices and unit_price is not None and item.price_seen != unit_price:
            item.price_seen = unit_price
            seen_updates.append(item)

    if seen_updates and cart.status == Cart.Status.OPEN:
        CartItem.objects.bulk_update(seen_updates, ["price_seen"])

    currencies = {line.currency for line in lines if line.currency}
    total = sum((line.line_total for line in lines if line.line_total is not None), Decimal("0.00"))
    return CartSnapshot(cart=cart, lines=lines, total=total, currency=currencies.pop() if len(currencies) == 1 else None)


def cart_merge_guest(*, guest_cart: Cart, user: AbstractBaseUser) -> Cart:
    """Merge a guest cart into the customer's open cart and retire the guest cart.

    Policy: quantities of the same SKU add up, capped at the units available
    and at the per-line maximum; SKUs no longer sold are dropped. Merging the
    same guest cart again returns the customer's cart unchanged.
    """
    customer_cart = cart_create(user=user)
    with transaction.atomic():
        # Lock both carts in id order so two merges cannot deadlock.
        both = Cart.objects.select_for_update().filter(pk__in=[guest_cart.pk, customer_cart.pk]).order_by("pk")
        locked = {cart.pk: cart for cart in both}
        guest = locked[guest_cart.pk]
        customer_cart = locked[customer_cart.pk]

        if guest.pk == customer_cart.pk:
            return customer_cart
        if guest.status == Cart.Status.MERGED:
            if guest.merged_into_id == customer_cart.pk:
                return customer_cart
            raise ConflictError("cart_merged", "This guest cart was already merged into another cart.")
        if guest.status != Cart.Status.OPEN:
            raise ConflictError("cart_not_open", f"Cannot merge a cart in status {guest.status}.")

        guest_items = list(guest.items.all())
        available = availability_by_sku([item.sku for item in guest_items])
        prices = variant_prices([item.sku for item in guest_items])
        existing = {item.sku: item for item in customer_cart.items.all()}
        for guest_item in guest_items:
            variant = prices.get(guest_item.sku)
            if variant is None or not variant.published:
                continue
            target = existing.get(guest_item.sku)
            current = target.quantity if target else 0
            cap = min(_max_line_quantity(), max(available.get(guest_item.sku, 0), current))
            merged_quantity = min(current + guest_item.quantity, cap)
            if merged_quantity <= 0:
                continue
            if target is None:
                CartItem.objects.create(
                    cart=customer_cart, sku=guest_item.sku, quantity=merged_quantity, price_seen=guest_item.price_seen
                )
            elif merged_quantity != current:
                target.quantity = merged_quantity
                target.save(update_fields=["quantity", "updated_at"])

        guest.status = Cart.Status.MERGED
        guest.merged_into = customer_cart
        guest.save(update_fields=["status", "merged_into", "updated_at"])

    log.info("cart_merged", cart_id=str(guest_cart.pk), into_cart_id=str(customer_cart.pk), user_id=user.pk)
    return customer_cart


def cart_mark_checked_out(*, cart: Cart, order_id: uuid.UUID) -> None:
    """Close a cart after checkout; runs inside the checkout transaction, which already holds the row lock."""
    Cart.objects.filter(pk=cart.pk).update(status=Cart.Status.CHECKED_OUT, order_id=order_id)


def cart_lock_for_checkout(*, cart: Cart) -> Cart:
    """Lock the cart for checkout and return it, raising ConflictError when it is not open."""
    return _lock_open_cart(cart)

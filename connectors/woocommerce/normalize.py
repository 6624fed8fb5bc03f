"""WooCommerce REST v3 payloads (orders, products, customers) → the common cart model. Untrusted input.

WooCommerce builds each payload at delivery time and coalesces deliveries, so every delivery is the
latest state of one resource: orders map to idempotent upserts keyed by the order id and
`date_modified_gmt` (the cart model ignores an older state; an order is recorded once).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import phonenumbers

from connectors import payload as fields
from connectors.payload import list_of as _list
from connectors.payload import money as _money
from connectors.payload import required_text as _required_str
from connectors.payload import text as _str
from recovery.model import (
    CartSnapshot,
    Contact,
    LineItem,
    NormalizeResult,
    OrderCancelled,
    OrderPlaced,
    PayloadError,
    ProductUpdated,
    VariantPrice,
)

#: Block-checkout drafts, unpaid and failed orders are carts still in progress: WooCommerce's abandoned carts.
CART_STATUSES = ("checkout-draft", "pending", "failed")
#: Purchases unless the store says otherwise (store setting `woo_paid_statuses`).
DEFAULT_PAID_STATUSES = ("processing", "completed", "on-hold")
#: A purchase undone: it no longer counts as recovered or completed.
UNDONE_STATUSES = ("cancelled", "refunded")
#: Delivery context our own edge adds before storing (store settings, the signed restore link).
CONTEXT_KEY = "_cartresq"


def checkout_token(order_id: str) -> str:
    """One order is one cart from `checkout-draft` to `completed`: the order id keys both."""
    return f"wc-order-{order_id}"


def normalize_order(p: Mapping[str, Any]) -> NormalizeResult:
    status = _required_str(p, "status")
    context = _obj(p, CONTEXT_KEY) or {}
    paid = tuple(context.get("paid_statuses") or DEFAULT_PAID_STATUSES)
    order_id = _required_str(p, "id")
    modified = _required_gmt(p, "date_modified_gmt")
    if status in CART_STATUSES:
        return NormalizeResult(
            event=_snapshot(p, order_id, modified, _opt_context_str(context, "restore_url"))
        )
    if status in paid:
        placed = gmt_time(p, "date_paid_gmt") or gmt_time(p, "date_completed_gmt") or modified
        currency, total = _currency(p), _money(p, "total")
        number = _str(p, "number")
        return NormalizeResult(
            event=OrderPlaced(
                platform_order_id=order_id,
                checkout_token=checkout_token(order_id),
                cart_token=cart_key(p),
                contact=_contact(p),
                currency=currency,
                total=total,
                placed_at=placed,
                name=f"#{number}" if number else None,
                source=_str(p, "created_via"),
                line_items=tuple(_line_item(i) for i in _list(p, "line_items")),
                # "completed" is WooCommerce's fulfilled: the cross-sell flow starts there
                fulfilled_at=(gmt_time(p, "date_completed_gmt") or modified) if status == "completed" else None,
            )
        )
    if status in UNDONE_STATUSES:
        return NormalizeResult(event=OrderCancelled(order_id, modified))
    return NormalizeResult(skipped=f"order status {status[:20]} is neither a cart nor a purchase")


def normalize_product(p: Mapping[str, Any]) -> NormalizeResult:
    """A simple product's price and stock (a variation's come as their own product.updated): the product
    id stands for the variant, as cart lines without a variation name only the product. Prices are in
    the shop's currency; `stock_quantity` only when the shop manages the product's stock."""
    product_id = _required_str(p, "id")
    if _str(p, "price") in (None, ""):
        return NormalizeResult(skipped="product without a price")
    stock = p.get("stock_quantity") if p.get("manage_stock") is True else None
    if stock is not None and (isinstance(stock, bool) or not isinstance(stock, int)):
        raise PayloadError("stock_quantity is not a whole number")
    images = _list(p, "images")
    image = images[0] if images and isinstance(images[0], Mapping) else None
    variant = VariantPrice(product_id, _money(p, "price"), None, f"woo:{product_id}" if stock is not None else None,
                           oversell=_str(p, "backorders") in ("notify", "yes"), available=stock)
    event = ProductUpdated(_str(p, "parent_id") if _str(p, "parent_id") not in (None, "0") else product_id,
                           (variant,), _required_gmt(p, "date_modified_gmt"),
                           title=_str(p, "name"), handle=_str(p, "slug"), image_url=_str(image, "src"),
                           categories=_categories(p))
    return NormalizeResult(event=event)


def _categories(p: Mapping[str, Any]) -> tuple[str, ...]:
    """The product's category ids (at most 20), for same-category recommendations."""
    found = [str(c.get("id")) for c in _list(p, "categories") if isinstance(c, Mapping) and str(c.get("id") or "").isdigit()]
    return tuple(dict.fromkeys(found))[:20]


def normalize_customer(p: Mapping[str, Any]) -> NormalizeResult:
    # WooCommerce customers carry no marketing-consent field (our opt-in rides on orders), so an
    # update changes nothing we keep.
    _required_str(p, "id")
    return NormalizeResult(skipped="customer update carries no consent")


def _snapshot(
    p: Mapping[str, Any], order_id: str, modified: datetime, restore_url: str | None
) -> CartSnapshot:
    items = tuple(_line_item(item) for item in _list(p, "line_items"))
    subtotal = sum((_money(item, "subtotal") for item in _list(p, "line_items")), Decimal("0"))
    return CartSnapshot(
        checkout_token=checkout_token(order_id),
        # Not cart_hash (it hashes the items only: two shoppers with equal carts share it): the plugin's
        # own key of the shopper's cart, the one its beacons carry, so drafts and beacons are one cart.
        cart_token=cart_key(p),
        platform_checkout_id=order_id,
        contact=_contact(p),
        line_items=items,
        currency=_currency(p),
        subtotal=subtotal,
        total=_money(p, "total"),
        restore_url=restore_url,
        updated_at=modified,
        created_at=gmt_time(p, "date_created_gmt"),
    )


def _contact(p: Mapping[str, Any]) -> Contact:
    billing = _obj(p, "billing") or {}
    email = _str(billing, "email")
    customer_id = _str(p, "customer_id")
    country = _str(billing, "country")
    return Contact(
        platform_customer_id=None if customer_id in (None, "0") else customer_id,  # 0 is a guest
        email=email.strip().lower() if email else None,
        phone=_phone(_str(billing, "phone"), country),
        first_name=_str(billing, "first_name"),
        last_name=_str(billing, "last_name"),
        country=country.upper() if country and len(country) == 2 else None,
        province=_str(billing, "state") if len(_str(billing, "state") or "") <= 8 else None,
        accepts_email=_marketing_opt_in(p),
        accepts_sms=_meta_true(p, SMS_OPT_IN_META),
    )


def _phone(raw: str | None, country: str | None) -> str | None:
    """WooCommerce's billing phone is free text ("030 1234567", "+49 30 1234567"): E.164, read in the billing
    country, as Shopify gives it and as STOP replies and suppressions name it; else as typed."""
    if not raw or not raw.strip():
        return None
    try:
        number = phonenumbers.parse(raw, (country or "").upper() or None)
    except phonenumbers.NumberParseException:
        return raw.strip()
    if not phonenumbers.is_valid_number(number):
        return raw.strip()
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


#: Order meta our plugin writes when the shopper ticks the checkout's marketing opt-in (classic checkout,
#: and copied from the block checkout's additional field); WooCommerce also keeps the field's own key.
OPT_IN_META = ("_cartresq_marketing_opt_in", "_wc_other/cartresq/marketing-opt-in")
TRUTHY = ("yes", "1", "true")


#: Order meta our plugin writes at checkout: its key of the shopper's cart (random, kept in the WooCommerce
#: session, new after each order), the same the storefront beacons carry as cart.token.
CART_KEY_META = "_cartresq_cart_key"
_CART_KEY = re.compile(r"wc-[0-9a-f]{40}")


def cart_key(p: Mapping[str, Any]) -> str | None:
    for meta in _list(p, "meta_data"):
        if isinstance(meta, Mapping) and meta.get("key") == CART_KEY_META:
            value = meta.get("value")
            return value if isinstance(value, str) and _CART_KEY.fullmatch(value) else None
    return None


#: The SMS opt-in box (off by default: the merchant turns it on; unticked at checkout).
SMS_OPT_IN_META = ("_cartresq_sms_opt_in", "_wc_other/cartresq/sms-opt-in")


def _marketing_opt_in(p: Mapping[str, Any]) -> bool:
    """WooCommerce orders have no consent field: only our plugin's recorded opt-in counts as consent."""
    return _meta_true(p, OPT_IN_META)


def _meta_true(p: Mapping[str, Any], keys: tuple[str, ...]) -> bool:
    for meta in _list(p, "meta_data"):
        if isinstance(meta, Mapping) and meta.get("key") in keys:
            value = meta.get("value")
            if value is True or (isinstance(value, str | int) and str(value).strip().lower() in TRUTHY):
                return True
    return False


def _line_item(item: Any) -> LineItem:
    if not isinstance(item, Mapping):
        raise PayloadError("line_items[] entry is not an object")
    quantity = item.get("quantity")
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 0:
        raise PayloadError("line_items[].quantity is missing or negative")
    # `price` is a JSON float in REST v3; the line `subtotal` is an exact string, before discounts.
    subtotal = _money(item, "subtotal")
    unit = (subtotal / quantity).quantize(Decimal("0.01")) if quantity else Decimal("0")
    variation = _str(item, "variation_id")
    image = _obj(item, "image")
    return LineItem(
        variant_id=None if variation in (None, "0") else variation,
        product_id=_str(item, "product_id"),
        title=(_required_str(item, "name"))[:255],
        variant_title=None,
        quantity=quantity,
        unit_price=unit,
        sku=_str(item, "sku"),
        image_url=_str(image, "src"),
    )


Normalizer = Callable[[Mapping[str, Any]], NormalizeResult]

NORMALIZERS: Mapping[str, Normalizer] = {
    "order.created": normalize_order,
    "order.updated": normalize_order,
    "product.updated": normalize_product,
    "customer.updated": normalize_customer,
}
TOPICS = tuple(NORMALIZERS)


def normalize(topic: str, payload: Any) -> NormalizeResult:
    """Raise PayloadError for a payload that is not the documented shape."""
    if not isinstance(payload, Mapping):
        raise PayloadError("payload is not a JSON object")
    normalizer = NORMALIZERS.get(topic)
    if normalizer is None:
        return NormalizeResult(skipped=f"topic {topic[:40]} is not handled")
    try:
        return normalizer(payload)
    except PayloadError:
        raise
    except (KeyError, TypeError, ValueError, InvalidOperation) as exc:
        raise PayloadError(f"unexpected payload shape: {type(exc).__name__}") from None








def _opt_context_str(context: Mapping[str, Any], key: str) -> str | None:
    value = context.get(key)
    return value if isinstance(value, str) and value else None


def _obj(p: Mapping[str, Any] | None, key: str) -> Mapping[str, Any] | None:
    return fields.obj(p, key, php=True)


def _currency(p: Mapping[str, Any]) -> str:
    return fields.currency(p, "currency")


def gmt_time(p: Mapping[str, Any], key: str) -> datetime | None:
    """`*_gmt` fields are UTC without an offset ("2026-09-14T18:42:11"); public: reconcile reads them too."""
    return fields.time(p, key, offset_required=False)


def _required_gmt(p: Mapping[str, Any], key: str) -> datetime:
    return fields.required_time(p, key, offset_required=False)

"""Shopify REST payloads (checkouts, orders, products, stock) → the common model. Payloads are untrusted."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from connectors import payload as fields
from connectors.payload import integer as _int
from connectors.payload import list_of as _list
from connectors.payload import money as _money
from connectors.payload import obj as _obj
from connectors.payload import required_text as _required_str
from connectors.payload import required_time as _required_time
from connectors.payload import text as _str
from connectors.payload import time as _time
from connectors.shopify import compliance
from recovery.model import (
    AppUninstalled,
    CartSnapshot,
    CheckoutDeleted,
    ConsentChanged,
    Contact,
    CustomerRef,
    InventoryChanged,
    LineItem,
    NormalizeResult,
    OrderCancelled,
    OrderPlaced,
    PayloadError,
    ProductUpdated,
    VariantPrice,
)


def normalize_checkout(p: Mapping[str, Any]) -> NormalizeResult:
    customer = _obj(p, "customer")
    address = _obj(p, "shipping_address") or _obj(p, "billing_address") or _obj(customer, "default_address")
    email = _str(p, "email") or _str(customer, "email")
    phone = _str(p, "phone") or _str(p, "sms_marketing_phone") or _str(customer, "phone")
    contact = Contact(
        platform_customer_id=_str(customer, "id"),
        email=email.lower() if email else None,
        phone=phone,
        first_name=_str(customer, "first_name") or _str(address, "first_name"),
        last_name=_str(customer, "last_name") or _str(address, "last_name"),
        locale=_str(p, "customer_locale"),
        country=_str(address, "country_code"),
        province=_str(address, "province_code"),
        accepts_email=_bool(p, "buyer_accepts_marketing"),
        accepts_sms=_bool(p, "buyer_accepts_sms_marketing"),
        orders_count=_int(customer, "orders_count"),
    )
    snapshot = CartSnapshot(
        checkout_token=_required_str(p, "token"),
        cart_token=_str(p, "cart_token"),
        platform_checkout_id=_str(p, "id"),
        contact=contact,
        line_items=tuple(_line_item(item) for item in _list(p, "line_items")),
        currency=_currency(p),
        subtotal=_money(p, "subtotal_price"),
        total=_money(p, "total_price"),
        restore_url=_str(p, "abandoned_checkout_url"),
        updated_at=_required_time(p, "updated_at"),
        created_at=_time(p, "created_at"),
        completed_at=_time(p, "completed_at"),
    )
    return NormalizeResult(event=snapshot)


def normalize_order(p: Mapping[str, Any]) -> NormalizeResult:
    customer = _obj(p, "customer")
    email = _str(p, "email") or _str(p, "contact_email") or _str(customer, "email")
    currency, total = _order_total(p)
    order = OrderPlaced(
        platform_order_id=_required_str(p, "id"),
        checkout_token=_str(p, "checkout_token"),
        cart_token=_str(p, "cart_token"),
        contact=Contact(
            platform_customer_id=_str(customer, "id"),
            email=email.lower() if email else None,
            phone=_str(p, "phone") or _str(customer, "phone"),
            first_name=_str(customer, "first_name"),
            last_name=_str(customer, "last_name"),
            accepts_email=_bool(p, "buyer_accepts_marketing"),
        ),
        currency=currency,
        total=total,
        placed_at=_time(p, "processed_at") or _required_time(p, "created_at"),
        name=_str(p, "name"),
        source=_str(p, "source_name"),
        line_items=tuple(_order_line(i) for i in _list(p, "line_items")),
        fulfilled_at=_fulfilled_at(p),
        refunded=_str(p, "financial_status") in ("refunded", "voided"),
    )
    return NormalizeResult(event=order)


def _order_line(item: Any) -> LineItem:
    """An order's line: as a cart's, with a quantity that may be 0 once refunded."""
    return _line_item(item)


def _fulfilled_at(p: Mapping[str, Any]) -> datetime | None:
    """When the order was fulfilled in full (orders/fulfilled, or any order payload that says so)."""
    if _str(p, "fulfillment_status") != "fulfilled":
        return None
    times = [t for f in _list(p, "fulfillments") if isinstance(f, Mapping) and (t := _time(f, "created_at"))]
    return max(times, default=None) or _time(p, "updated_at") or _required_time(p, "created_at")


def normalize_order_cancelled(p: Mapping[str, Any]) -> NormalizeResult:
    cancelled_at = _time(p, "cancelled_at") or _required_time(p, "updated_at")
    return NormalizeResult(event=OrderCancelled(_required_str(p, "id"), cancelled_at))


def normalize_customer_update(p: Mapping[str, Any]) -> NormalizeResult:
    email = _str(p, "email")

    def consent(key: str) -> bool | None:
        state = _str(_obj(p, key), "state")
        # "not_subscribed" and "pending" are no withdrawal; only these two are decisions.
        return {"subscribed": True, "unsubscribed": False}.get(state or "")

    ref = CustomerRef(_required_str(p, "id"), email.lower() if email else None, _str(p, "phone"))
    return NormalizeResult(
        event=ConsentChanged(ref, consent("email_marketing_consent"), consent("sms_marketing_consent"),
                             _required_time(p, "updated_at"))
    )


def _order_total(p: Mapping[str, Any]) -> tuple[str, Decimal]:
    # Order totals are in the shop's currency; the shopper paid in the presentment currency, like the cart.
    presentment = _obj(_obj(p, "total_price_set"), "presentment_money")
    if presentment is not None:
        code = _required_str(presentment, "currency_code").upper()
        if len(code) != 3 or not code.isalpha():
            raise PayloadError("total_price_set.presentment_money.currency_code is not ISO 4217")
        return code, _money(presentment, "amount")
    code = _str(p, "currency")
    if not code or len(code) != 3 or not code.isalpha():
        raise PayloadError("currency is missing or not an ISO 4217 code")
    return code.upper(), _money(p, "total_price")


def normalize_checkout_delete(p: Mapping[str, Any]) -> NormalizeResult:
    return NormalizeResult(event=CheckoutDeleted(platform_checkout_id=_str(p, "id"), cart_token=_str(p, "cart_token")))


def _compliance(topic: str) -> Normalizer:
    def read(p: Mapping[str, Any]) -> NormalizeResult:
        return compliance.NORMALIZERS[topic](p)

    return read


def normalize_product(p: Mapping[str, Any]) -> NormalizeResult:
    """Variant prices (shop currency) and the variant → inventory item link that stock facts need."""
    variants = []
    for v in _list(p, "variants"):
        if not isinstance(v, Mapping):
            raise PayloadError("variants[] entry is not an object")
        compare_at = _money(v, "compare_at_price") if v.get("compare_at_price") not in (None, "") else None
        variants.append(
            VariantPrice(
                variant_id=_required_str(v, "id"),
                price=_money(v, "price"),
                compare_at=compare_at,
                inventory_item_id=_str(v, "inventory_item_id"),
                oversell=_str(v, "inventory_policy") == "continue",
            )
        )
    image = _obj(p, "image")
    event = ProductUpdated(
        _required_str(p, "id"), tuple(variants), _required_time(p, "updated_at"),
        title=_str(p, "title"), handle=_str(p, "handle"), image_url=_str(image, "src"),
    )
    return NormalizeResult(event=event)


def normalize_inventory_level(p: Mapping[str, Any]) -> NormalizeResult:
    available = _int(p, "available")  # null: the item's inventory is not tracked
    event = InventoryChanged(
        _required_str(p, "inventory_item_id"), _required_str(p, "location_id"), available,
        _required_time(p, "updated_at"),
    )
    return NormalizeResult(event=event)


Normalizer = Callable[[Mapping[str, Any]], NormalizeResult]

#: Every topic the app handles; shopify.app.toml must subscribe to exactly these (a test checks).
NORMALIZERS: Mapping[str, Normalizer] = {
    "checkouts/create": normalize_checkout,
    "checkouts/update": normalize_checkout,
    "checkouts/delete": normalize_checkout_delete,
    "orders/create": normalize_order,
    # orders/paid also covers orders whose create delivery was lost; recording an order is idempotent.
    "orders/paid": normalize_order,
    "orders/cancelled": normalize_order_cancelled,
    # the cross-sell flow starts at fulfilment; the payload is the order (an unseen one is recorded too)
    "orders/fulfilled": normalize_order,
    "customers/update": normalize_customer_update,
    "products/update": normalize_product,
    "inventory_levels/update": normalize_inventory_level,
    "app/uninstalled": lambda p: NormalizeResult(event=AppUninstalled()),
    # Billing API (connectors/shopify/billing.py): cancelled, frozen, upgraded, approved.
    "app_subscriptions/update": lambda p: _subscription_update(p),
    # The three mandatory compliance topics (platform-facts §2.5).
    # (strict shapes, connectors/shopify/compliance.py: these erase data, and the HMAC covers no header)
    "customers/data_request": _compliance("customers/data_request"),
    "customers/redact": _compliance("customers/redact"),
    "shop/redact": _compliance("shop/redact"),
}
TOPICS = tuple(NORMALIZERS)
#: Topics processed even for an uninstalled shop (shop/redact arrives 48 h after the uninstall).
ALWAYS_PROCESSED = ("app/uninstalled", "customers/data_request", "customers/redact", "shop/redact")


def _subscription_update(p: Mapping[str, Any]) -> NormalizeResult:
    from connectors.shopify.billing import normalize_subscription_update

    return normalize_subscription_update(p)


def normalize(topic: str, payload: Any) -> NormalizeResult:
    """Raise PayloadError for a payload that is not the documented shape."""
    if not isinstance(payload, Mapping):
        raise PayloadError("payload is not a JSON object")
    try:
        return NORMALIZERS[topic](payload)
    except PayloadError:
        raise
    except (KeyError, TypeError, ValueError, InvalidOperation) as exc:
        raise PayloadError(f"unexpected payload shape: {type(exc).__name__}") from None


def _line_item(item: Any) -> LineItem:
    if not isinstance(item, Mapping):
        raise PayloadError("line_items[] entry is not an object")
    quantity = _int(item, "quantity")
    if quantity is None or quantity < 0:
        raise PayloadError("line_items[].quantity is missing or negative")
    image = _obj(item, "image")
    return LineItem(
        variant_id=_str(item, "variant_id"),
        product_id=_str(item, "product_id"),
        title=_required_str(item, "title"),
        variant_title=_str(item, "variant_title") or None,
        quantity=quantity,
        unit_price=_money(item, "price"),
        sku=_str(item, "sku") or None,
        image_url=_str(item, "image_url") or _str(image, "src"),
    )


def _bool(p: Mapping[str, Any], key: str) -> bool:
    return p.get(key) is True


def _currency(p: Mapping[str, Any]) -> str:
    return fields.currency(p, "presentment_currency", "currency")

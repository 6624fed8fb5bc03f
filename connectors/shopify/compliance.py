"""The mandatory compliance topics, read strictly, and the shop a signed body names.

Shopify's HMAC covers the body only; the topic and the shop come from unsigned headers. A compliance
topic erases data, so its body must look like one (platform-facts §2.5) and name the shop of the
header: a `checkouts/create` body resent as `shop/redact`, or one shop's body resent under another
shop's domain, is refused before anything is stored or erased.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from recovery.model import (
    CustomerDataRequest, CustomerRedact, CustomerRef, NormalizeResult, PayloadError, ShopRedact,
)

COMPLIANCE_TOPICS = ("customers/data_request", "customers/redact", "shop/redact")
#: Keys that mark the body of another topic (a checkout, an order, a customer, a product...).
_FOREIGN = frozenset(("id", "token", "cart_token", "line_items", "email", "phone", "variants", "admin_graphql_api_id"))


def named_shop(payload: Mapping[str, Any]) -> str | None:
    """The *.myshopify.com domain the body itself names (compliance topics: `shop_domain`; shop payloads:
    `myshopify_domain`, or `domain` when it is the myshopify one), lower-cased; None if it names none.
    Top-level lookups only: this runs on every webhook."""
    for key in ("shop_domain", "myshopify_domain", "domain"):
        value = payload.get(key)
        if isinstance(value, str) and (key != "domain" or value.lower().endswith(".myshopify.com")):
            return value.strip().lower()
        if value is not None and key == "shop_domain":
            return "?"  # present and not a string: names no shop we could serve
    return None


def _header(p: Mapping[str, Any], *, forbidden: frozenset[str]) -> str:
    shop = p.get("shop_domain")
    if not isinstance(shop, str) or not shop:
        raise PayloadError("shop_domain is missing")
    shop_id = p.get("shop_id")
    if isinstance(shop_id, bool) or not (
        isinstance(shop_id, int) or (isinstance(shop_id, str) and shop_id.isdigit())
    ):
        raise PayloadError("shop_id is missing or not an id")
    extra = sorted(forbidden & p.keys())
    if extra:
        raise PayloadError(f"{extra[0]} does not belong in this topic")
    return shop.strip().lower()


def _customer(p: Mapping[str, Any]) -> CustomerRef:
    customer = p.get("customer")
    if not isinstance(customer, Mapping):
        raise PayloadError("customer is missing or not an object")
    ref = []
    for key in ("id", "email", "phone"):
        value = customer.get(key)
        if value in (None, ""):
            ref.append(None)
        elif isinstance(value, bool) or not isinstance(value, str | int):
            raise PayloadError(f"customer.{key} is not a string")
        else:
            ref.append(str(value))
    if not any(ref):
        raise PayloadError("customer names no one (no id, email or phone)")
    return CustomerRef(ref[0], ref[1].lower() if ref[1] else None, ref[2])


def _ids(p: Mapping[str, Any], key: str) -> None:
    value = p.get(key, [])
    if not isinstance(value, list) or any(isinstance(v, bool) or not isinstance(v, int | str) for v in value):
        raise PayloadError(f"{key} is not a list of ids")


def shop_redact(p: Mapping[str, Any]) -> NormalizeResult:
    shop = _header(p, forbidden=_FOREIGN | {"customer", "orders_to_redact", "orders_requested", "data_request"})
    return NormalizeResult(event=ShopRedact(shop=shop))


def customer_redact(p: Mapping[str, Any]) -> NormalizeResult:
    shop = _header(p, forbidden=_FOREIGN | {"orders_requested", "data_request"})
    _ids(p, "orders_to_redact")
    return NormalizeResult(event=CustomerRedact(_customer(p), shop=shop))


def data_request(p: Mapping[str, Any]) -> NormalizeResult:
    shop = _header(p, forbidden=_FOREIGN | {"orders_to_redact"})
    _ids(p, "orders_requested")
    request = p.get("data_request")
    request_id = request.get("id") if isinstance(request, Mapping) else None
    if isinstance(request_id, bool) or not isinstance(request_id, int | str) or request_id == "":
        raise PayloadError("data_request.id is missing")
    return NormalizeResult(event=CustomerDataRequest(_customer(p), str(request_id), shop=shop))


NORMALIZERS = {"customers/data_request": data_request, "customers/redact": customer_redact, "shop/redact": shop_redact}


def check(topic: str, shop: str, payload: Mapping[str, Any]) -> str | None:
    """Why this signed body cannot be delivered under these headers, or None. For the web edge: a
    dictionary lookup or two on every topic; the full shape check only for the (rare) compliance ones."""
    named = named_shop(payload)
    if named is not None and named != shop:
        return "the body names another shop than X-Shopify-Shop-Domain"
    if topic in NORMALIZERS:
        try:
            NORMALIZERS[topic](payload)
        except PayloadError as exc:
            return f"body does not fit topic {topic}: {exc}"
    return None

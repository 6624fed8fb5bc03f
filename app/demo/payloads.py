"""Shopify-shaped checkout and order payloads for simulated shoppers (shapes as in tests/fixtures/shopify)."""

from __future__ import annotations

import hashlib
from datetime import datetime
from decimal import Decimal
from typing import Any

from ml.simulator import SimShopper

SHOP = "demo-outfitters.myshopify.com"


def tokens(seed: int, shopper: SimShopper) -> tuple[str, str, int]:
    """Deterministic checkout token, cart token and checkout id for one shopper."""
    digest = hashlib.sha256(f"{seed}:{shopper.index}".encode()).hexdigest()
    return digest[:32], f"Z2NwLWRlbW86{digest[32:56]}", 37_000_000_000_000 + seed * 100_000 + shopper.index


def _lines(shopper: SimShopper) -> list[dict[str, Any]]:
    return [
        {
            "key": item.variant_id,
            "product_id": item.product_id,
            "variant_id": item.variant_id,
            "title": item.title,
            "variant_title": item.variant_title or "",
            "quantity": item.quantity,
            "price": str(item.unit_price),
            "line_price": str(item.unit_price * item.quantity),
            "sku": item.variant_id.upper(),
            "vendor": "Demo Outfitters",
            "requires_shipping": True,
            "taxable": True,
            "gift_card": False,
        }
        for item in shopper.items
    ]


def checkout(seed: int, shopper: SimShopper, at: datetime, *, with_contact: bool) -> dict[str, Any]:
    token, cart_token, checkout_id = tokens(seed, shopper)
    total = str(shopper.cart_value)
    country = "DE" if shopper.locale == "de-DE" else "GB" if shopper.locale == "en-GB" else "US"
    return {
        "id": checkout_id,
        "token": token,
        "cart_token": cart_token,
        "email": shopper.email if with_contact else None,
        "phone": shopper.phone if with_contact else None,
        "buyer_accepts_marketing": shopper.accepts_email_marketing and with_contact,
        "buyer_accepts_sms_marketing": shopper.accepts_sms_marketing and with_contact,
        "sms_marketing_phone": shopper.phone if with_contact and shopper.accepts_sms_marketing else None,
        "customer_locale": shopper.locale,
        "currency": shopper.currency,
        "presentment_currency": shopper.currency,
        "subtotal_price": total,
        "total_price": total,
        "total_tax": "0.00",
        "total_discounts": "0.00",
        "line_items": _lines(shopper),
        "abandoned_checkout_url": f"https://{SHOP}/9876543/checkouts/ac/{token}/recover?key=demo{shopper.index}",
        "shipping_address": {"first_name": shopper.first_name, "country_code": country} if with_contact else None,
        "customer": {"id": 8_000_000 + shopper.index, "email": shopper.email, "first_name": shopper.first_name,
                     "orders_count": shopper.previous_purchases} if with_contact else None,
        "source_name": "web",
        "created_at": at.isoformat(),
        "updated_at": at.isoformat(),
        "completed_at": None,
    }


def order(seed: int, shopper: SimShopper, at: datetime, number: int) -> dict[str, Any]:
    token, cart_token, checkout_id = tokens(seed, shopper)
    total = str(shopper.cart_value)
    money = {"amount": total, "currency_code": shopper.currency}
    return {
        "id": 6_100_000_000_000 + seed * 100_000 + shopper.index,
        "name": f"#{number}",
        "checkout_id": checkout_id,
        "checkout_token": token,
        "cart_token": cart_token,
        "email": shopper.email,
        "phone": shopper.phone,
        "currency": shopper.currency,
        "presentment_currency": shopper.currency,
        "total_price": total,
        "subtotal_price": total,
        "total_price_set": {"shop_money": money, "presentment_money": money},
        "line_items": _lines(shopper),
        "customer": {"id": 8_000_000 + shopper.index, "email": shopper.email, "first_name": shopper.first_name},
        "financial_status": "paid",
        "source_name": "web",
        "created_at": at.isoformat(),
        "processed_at": at.isoformat(),
        "updated_at": at.isoformat(),
    }


def revenue(shopper: SimShopper) -> Decimal:
    return shopper.cart_value

"""Typed readers for platform payloads (untrusted JSON): each returns the value or raises PayloadError.

Shared by the Shopify and WooCommerce normalizers. Money is a decimal string (a float would lose cents);
a time is ISO 8601; `offset_required=False` reads WooCommerce's `*_gmt` fields, which are UTC without one.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from recovery.model import PayloadError


def obj(p: Mapping[str, Any] | None, key: str, *, php: bool = False) -> Mapping[str, Any] | None:
    """`php=True`: an empty list is an empty object (PHP's json_encode writes an empty array as [])."""
    value = p.get(key) if p else None
    if value is None or (php and value == []):
        return None
    if not isinstance(value, Mapping):
        raise PayloadError(f"{key} is not an object")
    return value


def list_of(p: Mapping[str, Any], key: str) -> list[Any]:
    value = p.get(key) or []
    if not isinstance(value, list):
        raise PayloadError(f"{key} is not a list")
    return value


def text(p: Mapping[str, Any] | None, key: str) -> str | None:
    value = p.get(key) if p else None
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise PayloadError(f"{key} is not a string")
    return str(value)


def required_text(p: Mapping[str, Any], key: str) -> str:
    value = text(p, key)
    if value is None:
        raise PayloadError(f"{key} is missing")
    return value


def integer(p: Mapping[str, Any] | None, key: str) -> int | None:
    value = p.get(key) if p else None
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise PayloadError(f"{key} is not an integer")
    return value


def money(p: Mapping[str, Any], key: str) -> Decimal:
    value = p.get(key)
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise PayloadError(f"{key} is not a decimal string")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise PayloadError(f"{key} is not a decimal string") from None
    if not amount.is_finite():
        raise PayloadError(f"{key} is not a finite amount")
    return amount


def currency(p: Mapping[str, Any], *keys: str) -> str:
    """The first of `keys` present, as an upper-case ISO 4217 code."""
    code = next((c for key in keys if (c := text(p, key))), None)
    if not code or len(code) != 3 or not code.isalpha():
        raise PayloadError("currency is missing or not an ISO 4217 code")
    return code.upper()


def time(p: Mapping[str, Any], key: str, *, offset_required: bool = True) -> datetime | None:
    value = text(p, key)
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise PayloadError(f"{key} is not an ISO 8601 time") from None
    if parsed.tzinfo is None:
        if offset_required:
            raise PayloadError(f"{key} has no UTC offset")
        return parsed.replace(tzinfo=UTC)
    return parsed if offset_required else parsed.astimezone(UTC)


def required_time(p: Mapping[str, Any], key: str, *, offset_required: bool = True) -> datetime:
    value = time(p, key, offset_required=offset_required)
    if value is None:
        raise PayloadError(f"{key} is missing")
    return value

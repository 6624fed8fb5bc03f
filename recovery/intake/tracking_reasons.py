"""The 400's reason for a beacon msgspec refused, in the words the marshmallow schema used (recovery/intake/tracking_schema.py)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any


def by_key(value: Any, depth: int = 4, keep: Callable[[str], bool] = lambda key: True) -> Any:
    """Objects' keys in order (those `keep` accepts), as deep as the beacon's own objects go (beacon, cart, items,
    item); deeper values, which the schema never reads as objects, are left as they are (a hostile body may nest
    a thousand levels)."""
    if depth and isinstance(value, dict):
        return {key: by_key(value[key], depth - 1, keep) for key in sorted(value) if keep(key)}
    if depth and isinstance(value, list):
        return [by_key(item, depth - 1, keep) for item in value]
    return value


#: msgspec's words for a wrong type (`Expected `int | null`, got `str``) → marshmallow's, by the expected type.
_TYPE_ERRORS = {"int": "Not a valid integer.", "str": "Not a valid string.", "array": "Not a valid list.",
                "object": "Invalid input type."}  # fmt: skip
_EXPECTED = re.compile(r"Expected `(\w+)[^`]*`, got `(\w+)`")
_MISSING = re.compile(r"Object missing required field `(\w+)`")
_INDEX = re.compile(r"\[(\d+)\]")


def reason(error: str) -> str:
    """msgspec's error (`Expected `int`, got `str` - at `$.cart.items[0].quantity``, or a rule's
    `field: reason - at `$.cart``) as the 400's reason: `cart.items.0.quantity: Not a valid integer.`"""
    message, at, where = error.rpartition(" - at `$")
    if not at:
        message, where = error, ""
    path = _INDEX.sub(r".\1", where.rstrip("`")).lstrip(".")
    if expected := _EXPECTED.fullmatch(message):
        kind, got = expected.groups()
        message = ": Field may not be null." if got == "null" else ": " + _TYPE_ERRORS.get(kind, "Invalid value.")
    elif missing := _MISSING.fullmatch(message):
        message = f"{missing.group(1)}: Missing data for required field."
    if message.startswith(": "):  # about the object at `path` itself
        return f"{path}{message}" if path else message[2:]
    return f"{path}.{message}" if path else message

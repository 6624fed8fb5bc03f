"""The send-time model's input: one row per (cart, candidate send offset), in a fixed column order.

Training, the simulator and serving all build rows here, so the column order lives in one place.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from decimal import Decimal
from types import MappingProxyType

import numpy as np

#: Column order of every feature row. Saved with each model and checked on load.
FEATURES: tuple[str, ...] = (
    "hour_of_abandonment",  # 0-23, shopper-local
    "day_of_week",  # 0 = Monday
    "cart_value",  # store currency
    "previous_purchases",
    "time_on_site",  # seconds
    "device_type",  # see DEVICE_CODES
    "items_in_cart",
    "viewed_checkout",  # 0/1
    "email_open_rate",  # 0..1, shopper history
    "discount_sensitivity",  # 0..1
    "send_offset_hours",  # hours after abandonment; the variable the caller chooses
)
CART_FEATURES: tuple[str, ...] = FEATURES[:-1]

#: Candidate send offsets: every 15 minutes from 0.5 h to 4 h (15 candidates).
DEFAULT_OFFSETS: tuple[float, ...] = tuple(0.5 + 0.25 * i for i in range(15))

DEVICE_CODES: Mapping[str, int] = MappingProxyType({"desktop": 0, "mobile": 1, "tablet": 2})

#: Values used for missing (or None/NaN) cart keys: a typical first-time desktop shopper
#: abandoning at midday mid-week. Neutral rather than zero, so a sparse cart still gets a
#: sensible ranking of offsets instead of an out-of-distribution one.
NEUTRAL_DEFAULTS: Mapping[str, float] = MappingProxyType(
    {
        "hour_of_abandonment": 12.0,
        "day_of_week": 2.0,
        "cart_value": 60.0,
        "previous_purchases": 0.0,
        "time_on_site": 180.0,
        "device_type": 0.0,
        "items_in_cart": 1.0,
        "viewed_checkout": 0.0,
        "email_open_rate": 0.2,
        "discount_sensitivity": 0.5,
    }
)

# Clip to the documented ranges: trees extrapolate flatly anyway, and clipping keeps a bad
# upstream value (e.g. hour 24, open rate 1.3) from landing in an unexpected leaf. The 1e9 cap
# keeps huge values finite in float32.
_BIG = 1e9
_BOUNDS: Mapping[str, tuple[float, float]] = MappingProxyType(
    {
        "hour_of_abandonment": (0.0, 23.0),
        "day_of_week": (0.0, 6.0),
        "cart_value": (0.0, _BIG),
        "previous_purchases": (0.0, _BIG),
        "time_on_site": (0.0, _BIG),
        "items_in_cart": (0.0, _BIG),
        "viewed_checkout": (0.0, 1.0),
        "email_open_rate": (0.0, 1.0),
        "discount_sensitivity": (0.0, 1.0),
    }
)

# Free-text device names seen from platforms and user-agent parsers; checked as substrings.
_TABLET_HINTS = ("tablet", "ipad")
_MOBILE_HINTS = ("mobile", "phone", "android", "smartphone")

CartValue = float | int | bool | Decimal | str | None


def device_code(device: CartValue) -> float:
    """Map a device name or code to DEVICE_CODES; anything unrecognised counts as desktop."""
    if device is None or isinstance(device, bool):
        return NEUTRAL_DEFAULTS["device_type"]
    if isinstance(device, str):
        name = device.strip().lower()
        if name in DEVICE_CODES:
            return float(DEVICE_CODES[name])
        if any(hint in name for hint in _TABLET_HINTS):
            return float(DEVICE_CODES["tablet"])
        if any(hint in name for hint in _MOBILE_HINTS):
            return float(DEVICE_CODES["mobile"])
        return float(DEVICE_CODES["desktop"])
    code = float(device)
    return code if code in (0.0, 1.0, 2.0) else NEUTRAL_DEFAULTS["device_type"]


def _number(key: str, value: CartValue) -> float:
    if value is None:
        return NEUTRAL_DEFAULTS[key]
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"cart feature {key!r} is not a number: {value!r}") from None
    if not math.isfinite(number):
        return NEUTRAL_DEFAULTS[key]
    low, high = _BOUNDS[key]
    return min(max(number, low), high)


def cart_vector(cart: Mapping[str, CartValue]) -> np.ndarray:
    """The ten cart features in FEATURES order (float32). Unknown keys are ignored."""
    values = [
        device_code(cart.get(key)) if key == "device_type" else _number(key, cart.get(key))
        for key in CART_FEATURES
    ]
    return np.asarray(values, dtype=np.float32)


def candidate_matrix(cart: Mapping[str, CartValue], offsets: Sequence[float]) -> np.ndarray:
    """One float32 row per candidate offset, columns in FEATURES order.

    A `send_offset_hours` key in `cart` is ignored: the offsets are the candidates.
    """
    column = np.asarray(offsets, dtype=np.float32)
    if column.ndim != 1 or column.size == 0:
        raise ValueError("offsets must be a non-empty sequence of hours")
    if not np.all(np.isfinite(column)) or np.any(column < 0):
        raise ValueError("offsets must be finite, non-negative hours")
    rows = np.empty((column.size, len(FEATURES)), dtype=np.float32)
    rows[:, :-1] = cart_vector(cart)
    rows[:, -1] = column
    return rows

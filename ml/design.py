"""The send-time model's inputs: only what production fills, expanded into a smooth design.

A cart is described by the keys production knows (`CART_KEYS`); each candidate send offset adds
one row. The offset enters through o and log o (a curve with one peak), and device interactions, the shopper-local
hour of the *send* through periodic Gaussian bumps every 3 hours (width 2 h; seven columns, the
eighth is implied by the intercept), so predicted conversion is smooth in the offset and the send
time wraps around midnight. Bumps rather than four daily harmonics: harmonics cannot follow a
peak two hours wide, and their misfit leaked into the offset curve (whose peak 15,000 sends can
barely place), moving the model's choices by seed (docs/effectiveness.md has the figures). The
simulator's hidden attributes (time on site, true open rate, discount sensitivity, intent) are
not inputs: nothing fills them in production.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from ml.features import FEATURES, CartValue, device_code

#: What a caller may pass for a cart; anything missing gets the neutral value below.
CART_KEYS: tuple[str, ...] = (
    "hour_of_abandonment",  # shopper-local, 0-24 (fractions allowed)
    "day_of_week",  # shopper-local, 0 = Monday
    "cart_value",
    "items_in_cart",
    "device_type",  # name or DEVICE_CODES code
    "previous_purchases",  # orders before this cart; > 0 means a returning customer
    "viewed_checkout",  # 1: contact captured at checkout; 0: by the storefront tracker/popup
    "prior_emails",  # our earlier emails to this shopper, when known
    "prior_opens",
    "prior_clicks",
)
NEUTRAL: Mapping[str, float] = {
    "hour_of_abandonment": 12.0, "day_of_week": 2.0, "cart_value": 60.0, "items_in_cart": 1.0,
    "device_type": 0.0, "previous_purchases": 0.0, "viewed_checkout": 0.0,
    "prior_emails": 0.0, "prior_opens": 0.0, "prior_clicks": 0.0,
}  # fmt: skip
#: Send-hour bumps: centres every 3 h, width 2 h; the last centre is left out (the intercept carries it).
_BUMP_CENTRES = tuple(float(c) for c in range(0, 21, 3))
_BUMP_WIDTH = 2.0

#: Column order of the model's input rows; saved with each model and checked on load.
MODEL_FEATURES: tuple[str, ...] = (
    "offset", "log_offset", "mobile_x_offset",
    *(f"send_hour_{int(c):02d}" for c in _BUMP_CENTRES),
    "weekend", "mobile", "tablet", "log_cart_value", "log_items", "returning", "log_previous",
    "checkout_contact", "history_known", "prior_open_rate", "prior_click_rate",
)  # fmt: skip


def _value(cart: Mapping[str, CartValue], key: str) -> float:
    raw = cart.get(key)
    if key == "device_type":
        return device_code(raw)
    try:
        number = float(raw) if raw is not None else math.nan
    except (TypeError, ValueError):
        raise ValueError(f"cart feature {key!r} is not a number: {raw!r}") from None
    return number if math.isfinite(number) else NEUTRAL[key]


def cart_columns(cart: Mapping[str, CartValue]) -> dict[str, float]:
    """One cart's values for CART_KEYS (neutral where missing, clipped to sane ranges)."""
    c = {key: _value(cart, key) for key in CART_KEYS}
    c["hour_of_abandonment"] = min(max(c["hour_of_abandonment"], 0.0), 24.0)
    c["day_of_week"] = min(max(c["day_of_week"], 0.0), 6.0)
    for key in CART_KEYS[2:]:
        c[key] = min(max(c[key], 0.0), 1e9)
    return c


def design(cols: Mapping[str, np.ndarray | float], offsets: np.ndarray | Sequence[float]) -> np.ndarray:
    """Model rows (float32, MODEL_FEATURES order). `cols` values are scalars or arrays that
    broadcast against `offsets` (one cart x candidates, or one row per logged send)."""
    o = np.asarray(offsets, dtype=np.float64)
    if o.ndim != 1 or o.size == 0 or not np.all(np.isfinite(o)) or np.any(o < 0):
        raise ValueError("offsets must be a non-empty sequence of finite, non-negative hours")
    n = o.size

    def col(key: str) -> np.ndarray:
        return np.broadcast_to(np.asarray(cols[key], dtype=np.float64), (n,))

    device = col("device_type")
    mobile, tablet = (device == 1.0).astype(np.float64), (device == 2.0).astype(np.float64)
    send = (col("hour_of_abandonment") + o) % 24.0
    emails, opens, clicks = col("prior_emails"), col("prior_opens"), col("prior_clicks")
    known = (emails > 0).astype(np.float64)
    previous = col("previous_purchases")
    lo = np.log(np.maximum(o, 0.05))  # the first minutes matter most; 3 min is the floor
    out = [o, lo, mobile * o]
    for centre in _BUMP_CENTRES:
        d = np.abs(send - centre)
        d = np.minimum(d, 24.0 - d)
        out.append(np.exp(-(d**2) / (2.0 * _BUMP_WIDTH**2)))
    out += [
        (col("day_of_week") >= 5).astype(np.float64), mobile, tablet,
        np.log1p(col("cart_value") / 100.0), np.log1p(col("items_in_cart")),
        (previous > 0).astype(np.float64), np.log1p(previous), col("viewed_checkout"), known,
        known * (np.minimum(opens, emails) + 0.5) / (emails + 2.0),
        known * (np.minimum(clicks, emails) + 0.1) / (emails + 2.0),
    ]  # fmt: skip
    return np.ascontiguousarray(np.stack(out, axis=1), dtype=np.float32)


def cart_design(cart: Mapping[str, CartValue], offsets: Sequence[float]) -> np.ndarray:
    """Rows for one cart's candidate offsets."""
    return design(cart_columns(cart), offsets)


_RAW = {name: i for i, name in enumerate(FEATURES)}


def columns_from_raw(rows: np.ndarray, history: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Production-visible columns of simulator rows (ml.features.FEATURES order); `history` is an
    (n, 3) array of prior emails, opens, clicks (zeros when None). Hidden attributes are dropped."""
    x = np.asarray(rows, dtype=np.float64)
    cols = {key: x[:, _RAW[key]] for key in CART_KEYS[:7]}
    h = np.zeros((len(x), 3)) if history is None else np.asarray(history, dtype=np.float64)
    cols.update(prior_emails=h[:, 0], prior_opens=h[:, 1], prior_clicks=h[:, 2])
    return cols

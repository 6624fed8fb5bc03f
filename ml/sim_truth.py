"""Ground truth of the simulator: how likely a reminder is to convert, as a logit.

Effects: send hour local to the shopper (evening ~20:00 best, lunch ~12:30 good, night ~03:00
worst), send offset (best near 1 h, a little worse at 30 min, steadily worse later; mobile shoppers
prefer earlier), cart value and previous purchases (up), email open rate (strongly up), viewed
checkout (up), discount sensitivity (down), weekend (slightly up), plus a hidden per-shopper intent.
"""

from __future__ import annotations

import numpy as np

from ml.features import DEVICE_CODES, FEATURES

_COL = {name: i for i, name in enumerate(FEATURES)}


def _hour_distance(a: np.ndarray, b: float) -> np.ndarray:
    d = np.abs(a - b) % 24.0
    return np.minimum(d, 24.0 - d)


def _bump(hours: np.ndarray, centre: float, width: float) -> np.ndarray:
    return np.exp(-(_hour_distance(hours, centre) ** 2) / (2.0 * width**2))


def send_hour_effect(local_hour: np.ndarray | float) -> np.ndarray:
    """Logit contribution of the shopper-local hour a message arrives."""
    h = np.asarray(local_hour, dtype=np.float64) % 24.0
    return 0.6 * _bump(h, 20.0, 2.0) + 0.35 * _bump(h, 12.5, 1.5) - 0.9 * _bump(h, 3.0, 2.5)


def offset_effect(offset_hours: np.ndarray | float) -> np.ndarray:
    """Logit contribution of the delay: peaks near 1 h, so 30 min is slightly worse, 4 h much worse."""
    o = np.asarray(offset_hours, dtype=np.float64)
    return -0.3 * o - 1.2 * np.exp(-2.0 * o)


def true_logit(rows: np.ndarray, intent: np.ndarray | float) -> np.ndarray:
    """Ground-truth logit of conversion for feature rows (FEATURES order) and hidden intent."""
    x = np.atleast_2d(np.asarray(rows, dtype=np.float64))
    c = {name: x[:, i] for name, i in _COL.items()}
    offset = c["send_offset_hours"]
    mobile = (c["device_type"] == DEVICE_CODES["mobile"]).astype(np.float64)
    tablet = (c["device_type"] == DEVICE_CODES["tablet"]).astype(np.float64)
    logit = (
        -1.4
        + send_hour_effect(c["hour_of_abandonment"] + offset)
        + offset_effect(offset)
        - mobile * (0.1 + 0.15 * (offset - 1.0))
        + 0.05 * tablet
        + 0.25 * np.log1p(c["cart_value"] / 100.0)
        + 0.5 * np.log1p(c["previous_purchases"])
        + 4.0 * (c["email_open_rate"] - 0.3)
        + 0.7 * c["viewed_checkout"]
        - 0.4 * c["discount_sensitivity"]
        + 0.1 * (c["day_of_week"] >= 5)
        + np.asarray(intent, dtype=np.float64)
    )
    return np.asarray(logit, dtype=np.float64)


def sigmoid(z: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-z)), dtype=np.float64)


def abandon_hour_weights() -> np.ndarray:
    """How abandonments spread over the local day: evening and lunch peaks, quiet nights."""
    hours = np.arange(24, dtype=np.float64)
    w = 0.15 + _bump(hours, 21.0, 2.5) + 0.6 * _bump(hours, 13.0, 2.0)
    return np.asarray(w / w.sum(), dtype=np.float64)

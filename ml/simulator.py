"""A seedable model of shopper behaviour: trains the send-time model until real outcomes exist,
and drives the product demo. Outcomes here are simulated, never real.

Ground truth of a reminder converting (logit, see `true_logit`): send hour local to the shopper
(evening ~20:00 best, lunch ~12:30 good, night ~03:00 worst), send offset (best near 1 h, a little
worse at 30 min, steadily worse later; mobile shoppers prefer earlier), cart value and previous
purchases (up), email open rate (strongly up), viewed checkout (up), discount sensitivity (down),
weekend (slightly up), plus a hidden per-shopper intent the model cannot see.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np

from ml.features import DEFAULT_OFFSETS, DEVICE_CODES, FEATURES, candidate_matrix
from ml.sim_data import CATALOG, CURRENCY, DEVICE_WEIGHTS, DEVICES, FIRST_NAMES, ZONES

ABANDON_RATE = 0.70
_COL = {name: i for i, name in enumerate(FEATURES)}
_OUTCOME_STREAM = 0x5E7D  # separates simulate_outcomes' draws from the per-shopper streams


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
    return (
        -1.3
        + send_hour_effect(c["hour_of_abandonment"] + offset)
        + offset_effect(offset)
        - mobile * (0.1 + 0.15 * (offset - 1.0))
        + 0.05 * tablet
        + 0.25 * np.log1p(c["cart_value"] / 100.0)
        + 0.4 * np.log1p(c["previous_purchases"])
        + 3.0 * (c["email_open_rate"] - 0.3)
        + 0.5 * c["viewed_checkout"]
        - 0.4 * c["discount_sensitivity"]
        + 0.1 * (c["day_of_week"] >= 5)
        + np.asarray(intent, dtype=np.float64)
    )


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


@dataclass(frozen=True)
class SimLineItem:
    product_id: str
    variant_id: str
    title: str
    variant_title: str | None
    quantity: int
    unit_price: Decimal


@dataclass(frozen=True)
class MessageResponse:
    opened: bool
    clicked: bool
    bought: bool


@dataclass(frozen=True)
class SimShopper:
    index: int
    email: str
    phone: str | None
    first_name: str
    device: str
    timezone: str
    locale: str
    items: tuple[SimLineItem, ...]
    currency: str
    time_on_site: float
    previous_purchases: int
    email_open_rate: float
    discount_sensitivity: float
    viewed_checkout: bool
    accepts_email_marketing: bool
    accepts_sms_marketing: bool
    abandons: bool
    buys_unprompted_after_hours: float | None  # abandoned, then bought with no message at all
    intent: float = field(repr=False)  # hidden from the model: why AUC is well below 1

    @property
    def cart_value(self) -> Decimal:
        return sum((item.unit_price * item.quantity for item in self.items), Decimal("0.00"))

    @property
    def items_in_cart(self) -> int:
        return sum(item.quantity for item in self.items)

    def features(self, hour_of_abandonment: int, day_of_week: int) -> dict[str, float]:
        """The cart mapping `candidate_matrix` expects, for an abandonment at that local time."""
        return {
            "hour_of_abandonment": float(hour_of_abandonment),
            "day_of_week": float(day_of_week),
            "cart_value": float(self.cart_value),
            "previous_purchases": float(self.previous_purchases),
            "time_on_site": self.time_on_site,
            "device_type": float(DEVICE_CODES[self.device]),
            "items_in_cart": float(self.items_in_cart),
            "viewed_checkout": float(self.viewed_checkout),
            "email_open_rate": self.email_open_rate,
            "discount_sensitivity": self.discount_sensitivity,
        }

    def conversion_probability(self, features_row: Sequence[float] | np.ndarray) -> float:
        """P(this shopper buys after a reminder described by `features_row`, FEATURES order)."""
        return float(_sigmoid(true_logit(np.asarray(features_row), self.intent))[0])

    def open_probability(self, offset_hours: float) -> float:
        return float(np.clip(self.email_open_rate * (1.08 - 0.04 * offset_hours), 0.01, 0.98))

    def click_probability(self, offset_hours: float) -> float:
        return self.open_probability(offset_hours) * (0.25 + 0.25 * self.discount_sensitivity)

    def will_open(self, offset_hours: float, rng: np.random.Generator) -> bool:
        """Marginal draw, independent of any purchase; use `respond` for a coherent funnel."""
        return bool(rng.random() < self.open_probability(offset_hours))

    def will_click(self, offset_hours: float, rng: np.random.Generator) -> bool:
        """Marginal draw (opened and clicked), independent of any purchase."""
        return bool(rng.random() < self.click_probability(offset_hours))

    def will_buy_after_message(self, features_row: Sequence[float] | np.ndarray, rng: np.random.Generator) -> bool:
        return bool(rng.random() < self.conversion_probability(features_row))

    def respond(self, features_row: Sequence[float] | np.ndarray, rng: np.random.Generator) -> MessageResponse:
        """Open -> click -> buy from ONE uniform draw, so bought implies clicked implies opened
        while P(bought) stays exactly `conversion_probability`."""
        offset = float(np.asarray(features_row)[_COL["send_offset_hours"]])
        p_buy = self.conversion_probability(features_row)
        p_click = max(p_buy, self.click_probability(offset))
        p_open = max(p_click, self.open_probability(offset))
        u = rng.random()
        return MessageResponse(opened=bool(u < p_open), clicked=bool(u < p_click), bought=bool(u < p_buy))


class ShopperModel:
    """Shopper `i` depends only on (seed, i): order of calls never changes anyone."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def shopper(self, i: int) -> SimShopper:
        rng = np.random.default_rng([self.seed, i])
        # Every draw happens unconditionally, in a fixed order, so each field is stable.
        device = DEVICES[rng.choice(len(DEVICES), p=DEVICE_WEIGHTS)]
        zone, locale = ZONES[rng.integers(len(ZONES))]
        n_items = int(rng.choice(4, p=(0.45, 0.30, 0.15, 0.10))) + 1
        picks = rng.choice(len(CATALOG), size=n_items, replace=False)
        quantities = rng.choice((1, 2), size=n_items, p=(0.85, 0.15))
        items = tuple(
            SimLineItem(e.product_id, e.variant_id, e.title, e.variant_title, int(q), e.unit_price)
            for e, q in ((CATALOG[p], q) for p, q in zip(picks, quantities, strict=True))
        )
        has_phone, sms_ok, email_ok = rng.random(3) < (0.5, 0.4, 0.6)
        previous = int(rng.poisson(rng.gamma(0.6, 1.5)))
        intent = float(rng.normal(0.0, 0.5))
        abandons = bool(rng.random() < ABANDON_RATE)
        p_unprompted = float(_sigmoid(np.array(-2.4 + intent + 0.3 * np.log1p(previous))))
        unprompted = bool(rng.random() < p_unprompted)
        unprompted_after = round(float(rng.exponential(10.0)) + 0.25, 2)
        return SimShopper(
            index=i,
            email=f"shopper-{i}@example.com",
            phone=f"+1555010{i % 10_000:04d}" if has_phone else None,
            first_name=FIRST_NAMES[rng.integers(len(FIRST_NAMES))],
            device=device,
            timezone=zone,
            locale=locale,
            items=items,
            currency=CURRENCY,
            time_on_site=round(float(rng.lognormal(np.log(240.0), 0.8)), 1),
            previous_purchases=previous,
            email_open_rate=round(float(rng.beta(2.0, 5.0)), 3),
            discount_sensitivity=round(float(rng.beta(2.0, 2.0)), 3),
            viewed_checkout=bool(rng.random() < 0.45),
            accepts_email_marketing=bool(email_ok),
            accepts_sms_marketing=bool(has_phone and sms_ok),
            abandons=abandons,
            buys_unprompted_after_hours=unprompted_after if abandons and unprompted else None,
            intent=intent,
        )


def abandon_hour_weights() -> np.ndarray:
    """How abandonments spread over the local day: evening and lunch peaks, quiet nights."""
    hours = np.arange(24, dtype=np.float64)
    w = 0.15 + _bump(hours, 21.0, 2.5) + 0.6 * _bump(hours, 13.0, 2.0)
    return w / w.sum()


def simulate_outcomes(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """`n` logged reminders: abandoning shopper, random local abandonment time, uniformly random
    candidate offset (an exploration policy, so every offset is seen). Returns float32 rows in
    FEATURES order and int8 labels (1 = bought after the reminder)."""
    model = ShopperModel(seed)
    rng = np.random.default_rng([seed, _OUTCOME_STREAM])
    weights = abandon_hour_weights()
    rows = np.empty((n, len(FEATURES)), dtype=np.float32)
    intents = np.empty(n, dtype=np.float64)
    i = filled = 0
    while filled < n:
        shopper = model.shopper(i)
        i += 1
        if not shopper.abandons:
            continue
        hour, day = int(rng.choice(24, p=weights)), int(rng.integers(7))
        offset = float(rng.choice(DEFAULT_OFFSETS))
        rows[filled] = candidate_matrix(shopper.features(hour, day), (offset,))[0]
        intents[filled] = shopper.intent
        filled += 1
    labels = (rng.random(n) < _sigmoid(true_logit(rows, intents))).astype(np.int8)
    return rows, labels

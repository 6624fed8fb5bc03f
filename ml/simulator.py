"""A seedable model of shopper behaviour: trains the send-time model until real outcomes exist,
and drives the product demo. Outcomes here are simulated, never real; the ground truth of a
reminder converting is documented in `ml.sim_truth`.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import accumulate

import numpy as np

from ml.features import DEFAULT_OFFSETS, DEVICE_CODES, FEATURES, candidate_matrix
from ml.sim_data import CATALOG, CURRENCY, DEVICE_WEIGHTS, DEVICES, FIRST_NAMES, ZONES, SimLineItem
from ml.sim_truth import abandon_hour_weights, sigmoid, true_logit

ABANDON_RATE = 0.70
_OFFSET_COL = FEATURES.index("send_offset_hours")
_OPEN_COL = FEATURES.index("email_open_rate")
_OUTCOME_STREAM = 0x5E7D  # separates simulate_outcomes' draws from the per-shopper streams
# Cumulative weights, so one uniform picks a category: Generator.choice(p=...) costs ~25 us a call.
_DEVICE_CDF = tuple(accumulate(DEVICE_WEIGHTS))
_N_ITEMS_CDF = tuple(accumulate((0.45, 0.30, 0.15, 0.10)))


def _pick(cdf: tuple[float, ...], u: float) -> int:
    return min(bisect_right(cdf, u * cdf[-1]), len(cdf) - 1)


def _open_p(open_rate: float, offset_hours: float) -> float:
    return min(max(open_rate * (1.08 - 0.04 * offset_hours), 0.01), 0.98)


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
        return float(sigmoid(true_logit(np.asarray(features_row), self.intent))[0])

    def open_probability(self, offset_hours: float) -> float:
        """P(a reminder is opened): the shopper's open rate, fading a little with the delay."""
        return _open_p(self.email_open_rate, offset_hours)

    def funnel(self, features_row: Sequence[float] | np.ndarray) -> tuple[float, float, float]:
        """(P(open), P(click), P(buy)) of one reminder, nested: open >= click >= buy.
        Uses the row's open rate, which for rows built by `features` is the shopper's own."""
        row = np.asarray(features_row, dtype=np.float64)
        p_buy = self.conversion_probability(row)
        p_open = max(_open_p(float(row[_OPEN_COL]), float(row[_OFFSET_COL])), p_buy)  # buyers opened it
        p_click = p_buy + (p_open - p_buy) * (0.2 + 0.2 * self.discount_sensitivity)
        return p_open, p_click, p_buy

    def will_open(self, offset_hours: float, rng: np.random.Generator) -> bool:
        """Marginal draw; use `respond` for the open, click and purchase of one message."""
        return bool(rng.random() < self.open_probability(offset_hours))

    def will_click(self, features_row: Sequence[float] | np.ndarray, rng: np.random.Generator) -> bool:
        return bool(rng.random() < self.funnel(features_row)[1])

    def will_buy_after_message(
        self, features_row: Sequence[float] | np.ndarray, rng: np.random.Generator
    ) -> bool:
        return bool(rng.random() < self.conversion_probability(features_row))

    def respond(
        self, features_row: Sequence[float] | np.ndarray, rng: np.random.Generator
    ) -> MessageResponse:
        """ONE uniform decides all three, so bought implies clicked implies opened, while each
        keeps its probability from `funnel` (P(bought) is exactly `conversion_probability`)."""
        p_open, p_click, p_buy = self.funnel(features_row)
        u = rng.random()
        return MessageResponse(opened=bool(u < p_open), clicked=bool(u < p_click), bought=bool(u < p_buy))


class ShopperModel:
    """Shopper `i` depends only on (seed, i): order of calls never changes anyone."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def shopper(self, i: int) -> SimShopper:
        rng = np.random.default_rng([self.seed, i])
        # Every draw happens unconditionally, in a fixed order, so each field is stable.
        u = rng.random(14)
        n_items = _pick(_N_ITEMS_CDF, u[2]) + 1
        picks = rng.permutation(len(CATALOG))[:n_items]
        items = tuple(
            SimLineItem(
                e.product_id, e.variant_id, e.title, e.variant_title, 2 if q < 0.15 else 1, e.unit_price
            )
            for e, q in zip((CATALOG[p] for p in picks), u[3 : 3 + n_items], strict=True)
        )
        previous = int(rng.poisson(rng.gamma(0.6, 1.5)))
        intent = float(rng.normal(0.0, 0.4))
        abandons = bool(u[7] < ABANDON_RATE)
        unprompted = bool(u[8] < 1.0 / (1.0 + math.exp(2.4 - intent - 0.3 * math.log1p(previous))))
        unprompted_after = round(float(rng.exponential(10.0)) + 0.25, 2)
        has_phone = bool(u[9] < 0.5)
        zone, locale = ZONES[int(u[1] * len(ZONES))]
        return SimShopper(
            index=i,
            email=f"shopper-{i}@example.com",
            phone=f"+1555010{i % 10_000:04d}" if has_phone else None,
            first_name=FIRST_NAMES[int(u[11] * len(FIRST_NAMES))],
            device=DEVICES[_pick(_DEVICE_CDF, u[0])],
            timezone=zone,
            locale=locale,
            items=items,
            currency=CURRENCY,
            time_on_site=round(float(rng.lognormal(math.log(240.0), 0.8)), 1),
            previous_purchases=previous,
            email_open_rate=round(float(rng.beta(2.0, 5.0)), 3),
            discount_sensitivity=round(float(rng.beta(2.0, 2.0)), 3),
            viewed_checkout=bool(u[10] < 0.45),
            accepts_email_marketing=bool(u[12] < 0.6),
            accepts_sms_marketing=has_phone and bool(u[13] < 0.4),
            abandons=abandons,
            buys_unprompted_after_hours=unprompted_after if abandons and unprompted else None,
            intent=intent,
        )


def simulate_outcomes(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """`n` logged reminders: abandoning shopper, random local abandonment time, uniformly random
    candidate offset (an exploration policy, so every offset is seen). Returns float32 rows in
    FEATURES order and int8 labels (1 = bought after the reminder)."""
    model = ShopperModel(seed)
    rng = np.random.default_rng([seed, _OUTCOME_STREAM])
    # Drawn up front in bulk: same stream, ~50x cheaper than per-row Generator.choice calls.
    hours = rng.choice(24, size=n, p=abandon_hour_weights())
    days = rng.integers(7, size=n)
    offsets = rng.choice(np.asarray(DEFAULT_OFFSETS), size=n)
    rows = np.empty((n, len(FEATURES)), dtype=np.float32)
    intents = np.empty(n, dtype=np.float64)
    i = filled = 0
    while filled < n:
        shopper = model.shopper(i)
        i += 1
        if not shopper.abandons:
            continue
        cart = shopper.features(int(hours[filled]), int(days[filled]))
        rows[filled] = candidate_matrix(cart, (float(offsets[filled]),))[0]
        intents[filled] = shopper.intent
        filled += 1
    labels = (rng.random(n) < sigmoid(true_logit(rows, intents))).astype(np.int8)
    return rows, labels


_HISTORY_STREAM = 0x4157


def prior_history(rows: np.ndarray, seed: int) -> np.ndarray:
    """What production would know of each simulated shopper's email history: (emails, opens, clicks).

    Returning shoppers (previous purchases > 0) got three emails per earlier order, opened at their
    hidden open rate; first-time shoppers have no history. Deterministic in (rows, seed)."""
    x = np.asarray(rows, dtype=np.float64)
    rng = np.random.default_rng([seed, _HISTORY_STREAM])
    emails = np.minimum(3 * x[:, FEATURES.index("previous_purchases")], 30).astype(np.int64)
    opens = rng.binomial(emails, np.clip(x[:, _OPEN_COL], 0.0, 1.0))
    clicks = rng.binomial(opens, 0.3)
    return np.stack([emails, opens, clicks], axis=1).astype(np.float64)

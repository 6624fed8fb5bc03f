"""The shopper simulator: deterministic, plausible, and with the documented ground truth."""

from __future__ import annotations

import re
from decimal import Decimal
from zoneinfo import ZoneInfo

import numpy as np

from ml.features import DEFAULT_OFFSETS, FEATURES, candidate_matrix
from ml.sim_data import FIRST_NAMES
from ml.simulator import ShopperModel, SimShopper, simulate_outcomes

HOUR = FEATURES.index("hour_of_abandonment")


def _row(shopper: SimShopper, abandoned_at: float, offset: float, **overrides: float) -> np.ndarray:
    """A feature row; the abandonment hour may be fractional so the send hour can be held fixed."""
    cart = shopper.features(hour_of_abandonment=0, day_of_week=2) | overrides
    row = candidate_matrix(cart, (offset,))[0].astype(np.float64)
    row[HOUR] = abandoned_at
    return row


def test_same_seed_gives_identical_outcomes_and_shoppers() -> None:
    # Given the same seed twice / When simulating
    X1, y1 = simulate_outcomes(400, seed=3)
    X2, y2 = simulate_outcomes(400, seed=3)
    # Then every row and label is identical
    assert np.array_equal(X1, X2) and np.array_equal(y1, y2)
    # And a shopper does not depend on which shoppers were generated before
    model = ShopperModel(3)
    later_first = (model.shopper(9), model.shopper(5))
    assert ShopperModel(3).shopper(5) == later_first[1]


def test_different_seeds_give_different_outcomes() -> None:
    X1, y1 = simulate_outcomes(400, seed=3)
    X2, y2 = simulate_outcomes(400, seed=4)
    assert not np.array_equal(X1, X2)
    assert not np.array_equal(y1, y2)
    assert ShopperModel(3).shopper(0) != ShopperModel(4).shopper(0)


def test_outcomes_are_well_formed_rows_with_a_plausible_base_rate() -> None:
    X, y = simulate_outcomes(1500, seed=5)
    assert X.shape == (1500, len(FEATURES)) and X.dtype == np.float32
    assert set(np.unique(y)) == {0, 1}
    assert 0.05 < y.mean() < 0.4
    # Every logged send used one of the candidate offsets, and all of them were explored
    assert set(X[:, -1].tolist()) == {np.float32(o) for o in DEFAULT_OFFSETS}


def test_shoppers_are_fictional_and_well_formed() -> None:
    model = ShopperModel(8)
    for i in range(300):
        s = model.shopper(i)
        assert s.email == f"shopper-{i}@example.com"
        assert s.phone is None or re.fullmatch(r"\+1555010\d{4}", s.phone)
        assert s.accepts_sms_marketing <= (s.phone is not None)
        assert s.first_name in FIRST_NAMES
        assert ZoneInfo(s.timezone) is not None
        assert 1 <= len(s.items) <= 4 and s.currency == "USD"
        for item in s.items:
            assert isinstance(item.unit_price, Decimal) and item.unit_price.as_tuple().exponent == -2
            assert item.quantity >= 1 and item.variant_id
        assert s.cart_value == sum(item.unit_price * item.quantity for item in s.items)
        assert 0 <= s.email_open_rate <= 1 and 0 <= s.discount_sensitivity <= 1


def test_about_70_percent_abandon_and_some_come_back_unprompted() -> None:
    shoppers = [ShopperModel(2).shopper(i) for i in range(3000)]
    abandoned = [s for s in shoppers if s.abandons]
    assert 0.66 < len(abandoned) / len(shoppers) < 0.74
    # A holdout group needs a nonzero baseline: some abandoners buy with no message at all
    unprompted = [
        s.buys_unprompted_after_hours for s in abandoned if s.buys_unprompted_after_hours is not None
    ]
    assert 0.02 < len(unprompted) / len(abandoned) < 0.3
    assert all(h > 0 for h in unprompted)
    # Shoppers who never abandoned already bought: no "unprompted return" for them
    assert all(s.buys_unprompted_after_hours is None for s in shoppers if not s.abandons)


def test_evening_is_the_best_send_hour_and_night_the_worst() -> None:
    # Given one shopper and a fixed 1 h delay
    shopper = ShopperModel(1).shopper(0)
    send_hours = np.arange(0, 24, 0.5)
    # When the send lands at each local hour of the day
    p = np.array([shopper.conversion_probability(_row(shopper, h - 1.0, 1.0)) for h in send_hours])
    # Then evening peaks, night bottoms out, and lunch beats mid-morning
    assert 19 <= send_hours[np.argmax(p)] <= 21
    assert 1 <= send_hours[np.argmin(p)] <= 5
    lunch, morning = p[send_hours == 12.5][0], p[send_hours == 9.5][0]
    assert lunch > morning


def test_about_an_hour_is_the_best_delay_with_very_early_slightly_worse() -> None:
    # Given the send always lands at 16:00 local, so only the delay changes
    shopper = ShopperModel(1).shopper(0)
    p = {o: shopper.conversion_probability(_row(shopper, 16.0 - o, o)) for o in (0.5, 1.0, 2.0, 4.0)}
    # Then 1 h beats 30 min, and later is steadily worse
    assert p[1.0] > p[0.5]
    assert p[1.0] > p[2.0] > p[4.0]
    # And "very early" costs less than a long wait
    assert p[1.0] - p[0.5] < p[1.0] - p[4.0]


def test_history_and_value_raise_conversion() -> None:
    shopper = ShopperModel(1).shopper(0)
    base = shopper.conversion_probability(_row(shopper, 18.0, 1.0, email_open_rate=0.2))
    assert shopper.conversion_probability(_row(shopper, 18.0, 1.0, email_open_rate=0.6)) > base
    assert (
        shopper.conversion_probability(_row(shopper, 18.0, 1.0, email_open_rate=0.2, previous_purchases=4))
        > base
    )
    assert (
        shopper.conversion_probability(_row(shopper, 18.0, 1.0, email_open_rate=0.2, cart_value=400)) > base
    )


def test_message_helpers_are_deterministic_given_the_generator() -> None:
    shopper = ShopperModel(4).shopper(3)
    row = _row(shopper, 18.0, 1.0)

    def draws(seed: int) -> list[bool]:
        rng = np.random.default_rng(seed)
        out: list[bool] = []
        for _ in range(50):
            out += [shopper.will_open(1.0, rng), shopper.will_click(row, rng)]
            out.append(shopper.will_buy_after_message(row, rng))
        return out

    assert draws(1) == draws(1)
    assert draws(1) != draws(2)


def test_respond_is_a_coherent_funnel_with_the_true_conversion_rate() -> None:
    # Given a shopper and a reminder
    shopper = ShopperModel(4).shopper(3)
    row = _row(shopper, 18.0, 1.0, email_open_rate=0.5)
    rng = np.random.default_rng(0)
    # When the reminder is received many times
    responses = [shopper.respond(row, rng) for _ in range(6000)]
    # Then buying implies clicking implies opening
    assert all(r.opened for r in responses if r.clicked) and all(r.clicked for r in responses if r.bought)
    # And the purchase rate matches the ground-truth probability
    rate = np.mean([r.bought for r in responses])
    assert abs(rate - shopper.conversion_probability(row)) < 0.02
    # And more open than click, more click than buy, at the rates `funnel` states
    p_open, p_click, _ = shopper.funnel(row)
    assert p_open > p_click > rate
    assert abs(np.mean([r.opened for r in responses]) - p_open) < 0.02
    assert abs(np.mean([r.clicked for r in responses]) - p_click) < 0.02

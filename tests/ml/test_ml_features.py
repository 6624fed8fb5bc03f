"""candidate_matrix: the row layout every model sees."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ml.features import (
    CART_FEATURES,
    DEFAULT_OFFSETS,
    DEVICE_CODES,
    FEATURES,
    NEUTRAL_DEFAULTS,
    CartValue,
    candidate_matrix,
)


def test_feature_order_is_fixed_with_offset_last() -> None:
    # Given / When: the published column order
    # Then: exactly the documented names, the send offset last
    assert FEATURES == (
        "hour_of_abandonment", "day_of_week", "cart_value", "previous_purchases", "time_on_site",
        "device_type", "items_in_cart", "viewed_checkout", "email_open_rate", "discount_sensitivity",
        "send_offset_hours",
    )  # fmt: skip
    assert FEATURES[:-1] == CART_FEATURES


def test_default_offsets_cover_half_an_hour_to_four_hours_every_15_minutes() -> None:
    assert len(DEFAULT_OFFSETS) == 15
    assert DEFAULT_OFFSETS[0] == 0.5 and DEFAULT_OFFSETS[-1] == 4.0
    assert np.allclose(np.diff(DEFAULT_OFFSETS), 0.25)


def test_candidate_matrix_puts_each_value_in_its_column() -> None:
    # Given a cart with a distinct value per feature
    cart: dict[str, CartValue] = {
        "hour_of_abandonment": 21, "day_of_week": 5, "cart_value": 123.5, "previous_purchases": 3,
        "time_on_site": 410.0, "device_type": "tablet", "items_in_cart": 4, "viewed_checkout": True,
        "email_open_rate": 0.45, "discount_sensitivity": 0.8, "unrelated_key": "ignored",
    }  # fmt: skip
    offsets = (0.5, 1.25, 3.0)
    # When
    rows = candidate_matrix(cart, offsets)
    # Then: one float32 row per offset, columns in FEATURES order
    assert rows.shape == (3, len(FEATURES)) and rows.dtype == np.float32
    expected = [21, 5, 123.5, 3, 410.0, DEVICE_CODES["tablet"], 4, 1, 0.45, 0.8]
    for row, offset in zip(rows, offsets, strict=True):
        assert np.allclose(row[:-1], expected)
        assert row[-1] == pytest.approx(offset)


def test_missing_keys_get_the_documented_neutral_defaults() -> None:
    rows = candidate_matrix({"cart_value": None, "email_open_rate": float("nan")}, (1.0,))
    assert np.allclose(rows[0, :-1], [NEUTRAL_DEFAULTS[k] for k in CART_FEATURES])


@pytest.mark.parametrize(
    ("device", "code"),
    [("mobile", 1), ("Mobile ", 1), ("iPhone", 1), ("Android", 1), ("tablet", 2), ("iPad", 2),
     ("desktop", 0), ("smart fridge", 0), (1, 1), (2.0, 2), (7, 0), (None, 0)],
)  # fmt: skip
def test_device_names_and_codes_are_mapped(device: CartValue, code: int) -> None:
    assert candidate_matrix({"device_type": device}, (1.0,))[0, FEATURES.index("device_type")] == code


def test_out_of_range_values_are_clipped_to_documented_ranges() -> None:
    cart = {"hour_of_abandonment": 30, "email_open_rate": 1.5, "cart_value": -5, "day_of_week": -1}
    row = candidate_matrix(cart, (1.0,))[0]
    assert row[FEATURES.index("hour_of_abandonment")] == 23
    assert row[FEATURES.index("email_open_rate")] == 1.0
    assert row[FEATURES.index("cart_value")] == 0.0
    assert row[FEATURES.index("day_of_week")] == 0.0


@pytest.mark.parametrize("offsets", [(), (-1.0,), (math.nan,), ((1.0, 2.0),)])
def test_invalid_offsets_are_rejected(offsets: tuple[object, ...]) -> None:
    with pytest.raises(ValueError):
        candidate_matrix({}, offsets)  # type: ignore[arg-type]


def test_non_numeric_feature_is_rejected_with_its_name() -> None:
    with pytest.raises(ValueError, match="cart_value"):
        candidate_matrix({"cart_value": "lots"}, (1.0,))


_value = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True), st.integers(-(10**12), 10**12))


@settings(database=None, max_examples=60, deadline=None)
@given(
    cart=st.dictionaries(st.sampled_from(CART_FEATURES), _value),
    offsets=st.lists(st.floats(0, 48, allow_nan=False), min_size=1, max_size=20),
)
def test_any_numeric_cart_gives_finite_rows(cart: dict[str, object], offsets: list[float]) -> None:
    # Given any mix of numbers, infinities, NaN and None
    rows = candidate_matrix(cart, offsets)  # type: ignore[arg-type]
    # Then rows are finite, typed, and carry the offsets unchanged (to float32 precision)
    assert rows.shape == (len(offsets), len(FEATURES)) and rows.dtype == np.float32
    assert np.all(np.isfinite(rows))
    assert np.array_equal(rows[:, -1], np.asarray(offsets, dtype=np.float32))

"""The beacon parser and endpoint under arbitrary input: a reasoned 4xx, never a 500 or another exception."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app import create_app
from app.runtime import build_runtime
from recovery.intake.tracking_schema import BeaconError, parse_beacon
from tests.conftest import add_store, make_settings
from tests.support.shopify import SHOP

KEYS = ["v", "shop", "sid", "type", "ts", "page", "tos", "device", "tz", "cart", "checkout_token", "contact",
        "consent", "popup", "token", "currency", "total", "count", "items", "variant_id", "product_id", "quantity",
        "price", "title", "sku", "email", "phone", "analytics", "marketing"]
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70), st.floats(allow_nan=False),
    st.text(max_size=40), st.sampled_from(["cart", "contact", "exit", "popup", SHOP, "USD", "<script>", "?key=x",
                                           "k3JxQ9vT2mWb7YzA", "a@example.com", "Europe/Berlin", "checkout_contact"]),
)
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(KEYS), inner, max_size=6)), max_leaves=25)
BEACONS = st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=12).map(lambda d: {"v": 1, "shop": SHOP, **d})
VALID = {"v": 1, "shop": SHOP, "sid": "k3JxQ9vT2mWb7YzA", "type": "cart", "ts": 1795840000000,
         "cart": {"token": "c1-abc", "currency": "USD", "total": 100, "items": []},
         "contact": {"email": "a@example.com"}, "consent": {"analytics": True}}
#: Mostly valid beacons with a few fields replaced, so many reach the database.
NEAR_VALID = st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=3).map(lambda d: {**VALID, **d})


@settings(max_examples=400, deadline=None)
@given(st.one_of(BEACONS.map(lambda d: json.dumps(d).encode()), st.binary(max_size=300)))
def test_parser_only_ever_raises_beacon_errors(body: bytes) -> None:
    try:
        parsed = parse_beacon(body)
    except BeaconError as exc:
        assert str(exc)
    else:
        assert parsed["v"] == 1 and parsed["shop"] == SHOP


def test_endpoint_never_answers_5xx(database_url: str, tmp_path: Any) -> None:
    rt = build_runtime(make_settings(database_url, tmp_path, track_ip_limit="100000/minute"))
    add_store(rt)
    client = create_app(runtime=rt).test_client()

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.one_of(BEACONS, NEAR_VALID))
    def post(body: dict[str, Any]) -> None:
        response = client.post("/track", data=json.dumps(body), headers={"Content-Type": "text/plain",
                                                                         "Origin": f"https://{SHOP}"})
        assert response.status_code < 500, response.data

    try:
        post()
    finally:
        rt.close()


def test_keys_that_are_no_unicode_are_ignored_like_any_unknown_key() -> None:
    """A lone surrogate in a key ("\\ud800" in JSON) names no field: the beacon is kept, as with marshmallow."""
    body = json.dumps({**VALID, "\ud800x": 1, "cart": {**VALID["cart"], "\udfff": [2]}}).encode()
    parsed = parse_beacon(body)
    assert parsed["cart"]["token"] == "c1-abc" and "\ud800x" not in parsed
    refused = json.dumps({**VALID, "\ud800x": 1, "ts": "soon"}).encode()
    with pytest.raises(BeaconError, match="^ts: Not a valid integer"):
        parse_beacon(refused)

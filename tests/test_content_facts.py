"""Reminders carry urgency only from recorded facts: webhooks in, the real send path, the email out."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from app import create_app
from app.runtime import Runtime, build_runtime
from recovery.sending.channels import FakeChannel, OutboundEmail
from tests.conftest import add_store, drain, make_settings
from tests.loop_helpers import HOUR, abandon_all, now, send_due, set_store
from tests.support import shopify
from tests.support.catalog import (
    MUG_ITEM,
    MUG_VARIANT,
    OTHER_LOCATION,
    TASSE_ITEM,
    TASSE_VARIANT,
    inventory,
    post_topic,
    product,
)

TASSE = 'Tasse "Morgen" <klein> & groß'


@pytest.fixture
def fake() -> FakeChannel:
    return FakeChannel()


@pytest.fixture
def rt(database_url: str, tmp_path: Path, fake: FakeChannel) -> Iterator[Runtime]:
    runtime = build_runtime(
        make_settings(database_url, tmp_path), channels={"email": fake, "sms": fake, "push": fake}
    )
    add_store(runtime)
    set_store(runtime, holdout_percent=0)
    yield runtime
    runtime.close()


@pytest.fixture
def client(rt: Runtime):  # type: ignore[no-untyped-def]
    return create_app(runtime=rt).test_client()


def send(rt: Runtime, client, topic: str, payload: dict) -> None:  # type: ignore[no-untyped-def]
    assert post_topic(client, topic, payload).status_code == 200
    drain(rt)


def post_guest(client) -> None:  # type: ignore[no-untyped-def]
    # She ticked the newsletter box: in the EU, email reminders need that consent.
    payload = {**shopify.load("checkouts_update__guest_eur"), "buyer_accepts_marketing": True}
    assert shopify.post(client, "checkouts_update__guest_eur", payload=payload).status_code == 200


def reminder(
    rt: Runtime, client, fake: FakeChannel, checkout: str = "checkouts_update"
) -> tuple[str, str, str]:  # type: ignore[no-untyped-def]
    """The first reminder for `checkout`: (subject, HTML as read, text)."""
    shopify.post(client, checkout)
    drain(rt)
    at = now() + 2 * HOUR
    abandon_all(rt, at)
    assert send_due(rt, at + 5 * HOUR) == ["sent"]
    [email] = fake.sent
    assert isinstance(email, OutboundEmail)
    return email.subject, html.unescape(email.html), email.text


def test_price_drop_recorded_after_the_cart_is_shown_with_both_prices(rt: Runtime, client, fake) -> None:  # type: ignore[no-untyped-def]
    # Given the tote (49.90 in the cart of 2026-09-14) dropped to 39.90 on 2026-09-16
    send(rt, client, "products/update", shopify.load("products_update"))
    # When the first reminder goes out
    subject, page, text = reminder(rt, client, fake)
    # Then both parts say so with the current price, and only for the tote
    for part in (page, text):
        assert "now $39.90 (was $49.90)" in part and part.count("(was ") == 1
        assert "2 × $39.90" in part and "$79.80" in part
    assert subject == "Maren, did you mean to leave these behind?"  # the deterministic line: no AI key set


@pytest.mark.parametrize(
    "price, updated_at",
    [
        (
            "39.90",
            "2026-09-14T08:00:00-04:00",
        ),  # lower, but recorded before the cart: the cart's price is newer
        ("49.90", "2026-09-16T09:00:04-04:00"),  # unchanged
        ("54.90", "2026-09-16T09:00:04-04:00"),  # went up
    ],
)
def test_no_price_claim_without_a_real_drop_since_the_cart(
    rt: Runtime, client, fake, price: str, updated_at: str
) -> None:  # type: ignore[no-untyped-def]
    send(rt, client, "products/update", product(price=price, updated_at=updated_at))
    _, page, text = reminder(rt, client, fake)
    for part in (page, text):
        assert "(was " not in part and "now $" not in part and "2 × $49.90" in part


@pytest.mark.parametrize(
    "counts, threshold, shown",
    [
        ((3,), None, "Only 3 left"),
        ((2, 2), None, "Only 4 left"),  # summed over locations
        ((6,), None, None),  # above the default threshold of 5
        ((6,), 8, "Only 6 left"),  # the store's own threshold
        ((0,), None, None),  # none left: no urgency, the item is simply unavailable
        ((None,), None, None),  # not tracked
    ],
)
def test_low_stock_only_when_inventory_says_so(rt: Runtime, client, fake, counts, threshold, shown) -> None:  # type: ignore[no-untyped-def]
    # Given the mug's stock at one or two locations (and the tote unknown)
    send(
        rt,
        client,
        "products/update",
        product(
            price="24.00", variant=MUG_VARIANT, item=MUG_ITEM, product_id=8840213577019, title="Stoneware Mug"
        ),
    )
    for count, location in zip(counts, (71520846121, OTHER_LOCATION), strict=False):
        send(rt, client, "inventory_levels/update", inventory(count, item=MUG_ITEM, location=location))
    if threshold is not None:
        set_store(rt, low_stock_threshold=threshold)
    # When the reminder is rendered / Then "Only N left" appears exactly when the facts back it
    _, page, text = reminder(rt, client, fake)
    for part in (page, text):
        assert (shown in part) if shown else ("Only " not in part and not re.search(r"\d+ left", part))


def test_an_out_of_stock_item_carries_no_urgency_while_the_rest_does(rt: Runtime, client, fake) -> None:  # type: ignore[no-untyped-def]
    # Given the tote dropped in price but is sold out, and the mug is low
    send(rt, client, "products/update", shopify.load("products_update"))
    send(rt, client, "inventory_levels/update", inventory(0))
    send(
        rt,
        client,
        "products/update",
        product(
            price="24.00", variant=MUG_VARIANT, item=MUG_ITEM, product_id=8840213577019, title="Stoneware Mug"
        ),
    )
    send(rt, client, "inventory_levels/update", inventory(2, item=MUG_ITEM))
    # When the reminder goes out (the cart is only partly out of stock)
    _, page, text = reminder(rt, client, fake)
    # Then the mug's low stock is said, and nothing about the sold-out tote's price
    for part in (page, text):
        assert "Only 2 left" in part and "(was " not in part and "2 × $49.90" in part


def test_german_cart_in_euros_shows_the_drop_in_german_format_and_escapes_markup(
    rt: Runtime, client, fake
) -> None:  # type: ignore[no-untyped-def]
    # Given a store selling in EUR, and the mug "Tasse <klein>" dropped from 19,95 € to 17,50 €
    set_store(rt, currency="EUR")
    send(
        rt,
        client,
        "products/update",
        product(price="17.50", variant=TASSE_VARIANT, item=TASSE_ITEM, product_id=8840213577044, title=TASSE),
    )
    send(rt, client, "inventory_levels/update", inventory(1, item=TASSE_ITEM))
    # When the German guest's reminder goes out
    post_guest(client)
    drain(rt)
    at = now() + 2 * HOUR
    abandon_all(rt, at)
    assert send_due(rt, at + 5 * HOUR) == ["sent"]
    [email] = fake.sent
    assert isinstance(email, OutboundEmail)
    # Then prices are German-formatted euros, the facts are in German, and the title's markup is escaped
    for part in (html.unescape(email.html), email.text):
        assert "jetzt 17,50\xa0€ (vorher 19,95\xa0€)" in part and "Nur noch 1 verfügbar" in part
        assert "2 × 17,50\xa0€" in part and "35,00\xa0€" in part
    assert "&lt;klein&gt; &amp; groß" in email.html and "<klein>" not in email.html
    assert TASSE in email.text
    assert email.subject == "Lene, wollten Sie diese Artikel wirklich zurücklassen?"


def test_no_price_claim_when_the_cart_is_in_another_currency_than_the_shop(rt: Runtime, client, fake) -> None:  # type: ignore[no-untyped-def]
    # Given a USD shop whose variant dropped to 17.50 USD, and a cart of the same variant priced in EUR
    send(
        rt,
        client,
        "products/update",
        product(price="17.50", variant=TASSE_VARIANT, item=TASSE_ITEM, product_id=8840213577044, title=TASSE),
    )
    post_guest(client)
    drain(rt)
    at = now() + 2 * HOUR
    abandon_all(rt, at)
    assert send_due(rt, at + 5 * HOUR) == ["sent"]
    # Then nothing compares dollars with euros
    [email] = fake.sent
    assert "vorher" not in email.text and "2 × 19,95\xa0€" in email.text

"""products/update and inventory_levels/update through the real endpoint and worker: facts, staleness."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from app import create_app
from app.runtime import Runtime, build_runtime
from recovery.storage import tables as t
from recovery.sending.channels import FakeChannel, OutboundEmail
from tests.conftest import add_store, drain, make_settings
from tests.loop_helpers import HOUR, abandon_all, messages, now, send_due, set_store
from tests.support import shopify
from tests.support.catalog import (
    recent,
    MUG_ITEM,
    MUG_VARIANT,
    OTHER_LOCATION,
    TOTE_ITEM,
    TOTE_VARIANT,
    inventory,
    post_topic,
    product,
)


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


def prices(rt: Runtime) -> dict[str, t.VariantPrice]:
    with rt.sessions() as session:
        return {row.variant_id: row for row in session.scalars(select(t.VariantPrice))}


def levels(rt: Runtime) -> dict[tuple[str, str], int | None]:
    with rt.sessions() as session:
        return {
            (r.inventory_item_id, r.location_id): r.available
            for r in session.scalars(select(t.InventoryLevel))
        }


def outcomes(rt: Runtime) -> list[str | None]:
    with rt.sessions() as session:
        return list(session.scalars(select(t.WebhookDelivery.outcome).order_by(t.WebhookDelivery.id)))


def send(rt: Runtime, client, topic: str, payload: dict, triggered_at: str | None = None) -> None:  # type: ignore[no-untyped-def]
    assert post_topic(client, topic, payload, triggered_at).status_code == 200
    drain(rt)


def test_products_update_records_every_variant_price_and_its_inventory_item(rt: Runtime, client) -> None:
    # Given the products/update fixture (Olive now 39.90, compare-at 49.90; Charcoal 49.90)
    send(rt, client, "products/update", shopify.load("products_update"), "2026-09-14T18:42:11Z")
    # Then both variants are stored with their price, currency, stock link and Shopify's updated_at
    rows = prices(rt)
    olive, charcoal = rows[TOTE_VARIANT], rows["46310287573289"]
    assert (olive.price, olive.compare_at, olive.currency, olive.inventory_item_id) == (
        Decimal("39.90"),
        Decimal("49.90"),
        "USD",
        str(TOTE_ITEM),
    )
    assert (charcoal.price, charcoal.compare_at, charcoal.inventory_item_id) == (
        Decimal("49.90"),
        None,
        "48392017678633",
    )
    assert olive.platform_updated_at == datetime(2026, 9, 16, 13, 0, 4, tzinfo=UTC)
    assert olive.triggered_at == recent(datetime(2026, 9, 14, 18, 42, 11, tzinfo=UTC))  # the delivery's header
    assert outcomes(rt) == ["prices recorded (2 variants)"]


def test_a_retried_older_product_payload_changes_nothing(rt: Runtime, client) -> None:
    # Given the newer price (39.90 at 09:00:04) is stored
    send(rt, client, "products/update", product(price="39.90"), "2026-09-16T13:00:05Z")
    # When Shopify retries an older payload (49.90 at 08:00, triggered earlier), hours later
    send(
        rt,
        client,
        "products/update",
        product(price="49.90", updated_at="2026-09-16T08:00:00-04:00"),
        "2026-09-16T12:00:01Z",
    )
    # And the same state arrives again with an older Triggered-At
    send(rt, client, "products/update", product(price="44.90"), "2026-09-16T13:00:01Z")
    # Then the stored price is still the newest one, and the deliveries say why
    row = prices(rt)[TOTE_VARIANT]
    assert row.price == Decimal("39.90") and row.platform_updated_at == datetime(
        2026, 9, 16, 13, 0, 4, tzinfo=UTC
    )
    assert outcomes(rt)[1:] == ["stale: a newer state is stored"] * 2
    # And a same-second change triggered later does win (Triggered-At breaks the tie)
    send(rt, client, "products/update", product(price="37.00"), "2026-09-16T13:00:09Z")
    assert prices(rt)[TOTE_VARIANT].price == Decimal("37.00")


def test_inventory_levels_are_stored_per_location_and_older_retries_change_nothing(
    rt: Runtime, client
) -> None:
    # Given the fixture (17 available at the shop's location) and a second location
    send(rt, client, "inventory_levels/update", shopify.load("inventory_levels_update"))
    send(rt, client, "inventory_levels/update", inventory(4, location=OTHER_LOCATION))
    # When an older payload for the first location is retried after a newer one
    send(rt, client, "inventory_levels/update", inventory(2, updated_at="2026-09-16T11:00:00-04:00"))
    send(rt, client, "inventory_levels/update", inventory(9, updated_at="2026-09-16T10:30:00-04:00"))
    # Then each location keeps its newest count
    assert levels(rt) == {(str(TOTE_ITEM), "71520846121"): 2, (str(TOTE_ITEM), str(OTHER_LOCATION)): 4}
    assert outcomes(rt) == ["stock recorded"] * 3 + ["stale: a newer state is stored"]


@pytest.mark.parametrize(
    "topic, payload, error",
    [
        (
            "products/update",
            {**product(), "variants": [{**product()["variants"][0], "price": 39.9}]},
            "price",
        ),
        ("products/update", {**product(), "updated_at": None}, "updated_at is missing"),
        ("inventory_levels/update", {**inventory(3), "available": "3"}, "available is not an integer"),
        (
            "inventory_levels/update",
            {**inventory(3), "inventory_item_id": None},
            "inventory_item_id is missing",
        ),
    ],
)
def test_payload_of_the_wrong_shape_is_rejected_and_writes_no_fact(
    rt: Runtime, client, topic, payload, error
) -> None:  # type: ignore[no-untyped-def]
    send(rt, client, topic, payload)
    with rt.sessions() as session:
        delivery = session.scalars(select(t.WebhookDelivery)).one()
    assert delivery.outcome == "rejected" and error in (delivery.error or "")
    assert prices(rt) == {} and levels(rt) == {}


def stock(rt: Runtime, client, tote: int | None, mug: int | None, mug_policy: str = "deny") -> None:  # type: ignore[no-untyped-def]
    """The checkout's two variants known to the catalog, with this much stock each (None: never reported)."""
    send(rt, client, "products/update", product(price="49.90"))
    send(
        rt,
        client,
        "products/update",
        product(
            price="24.00",
            variant=MUG_VARIANT,
            item=MUG_ITEM,
            product_id=8840213577019,
            title="Stoneware Mug",
            policy=mug_policy,
        ),
    )
    if tote is not None:
        send(rt, client, "inventory_levels/update", inventory(tote))
    if mug is not None:
        send(rt, client, "inventory_levels/update", inventory(mug, item=MUG_ITEM))


def first_send(rt: Runtime, client) -> list[str]:  # type: ignore[no-untyped-def]
    shopify.post(client, "checkouts_update")  # tote x2 + mug x1, an email address
    drain(rt)
    at = now() + 2 * HOUR
    abandon_all(rt, at)
    return send_due(rt, at + 5 * HOUR)


def test_cart_whose_every_item_is_out_of_stock_is_not_messaged(
    rt: Runtime, client, fake: FakeChannel
) -> None:
    # Given both items of the cart at zero stock (the tote summed over two locations)
    stock(rt, client, tote=0, mug=-1)
    send(rt, client, "inventory_levels/update", inventory(0, location=OTHER_LOCATION))
    # When the first reminder is due / Then it is cancelled as out of stock and nothing goes out
    assert first_send(rt, client) == ["cancelled: out_of_stock"]
    assert fake.sent == [] and messages(rt)[0].reason == "out_of_stock"


@pytest.mark.parametrize(
    "case, tote, mug, policy",
    [
        ("one item still in stock", 0, 12, "deny"),
        ("stock of one item unknown", 0, None, "deny"),
        ("the other sells at zero stock (continue)", 0, 0, "continue"),
        ("stock at a second location", None, 0, "deny"),
    ],
)
def test_cart_not_known_to_be_entirely_out_of_stock_is_messaged(  # type: ignore[no-untyped-def]
    rt: Runtime, client, fake: FakeChannel, case: str, tote, mug, policy: str
) -> None:
    # Given a cart with at least one item that can still be bought (or whose stock we do not know)
    stock(rt, client, tote=tote, mug=mug, mug_policy=policy)
    if tote is None:  # the tote: zero here, three at another location
        send(rt, client, "inventory_levels/update", inventory(0))
        send(rt, client, "inventory_levels/update", inventory(3, location=OTHER_LOCATION))
    # When the first reminder is due / Then it goes out
    assert first_send(rt, client) == ["sent"], case
    [email] = fake.sent
    assert isinstance(email, OutboundEmail)
    # And an item at zero stock gets no urgency line ("Only 0 left" or a price claim)
    assert "Only 0" not in email.text and "(was " not in email.text


def test_shop_erasure_removes_its_catalog_facts(rt: Runtime, client) -> None:
    # Given prices and stock of the shop / When shop/redact arrives / Then they are gone with the shop
    stock(rt, client, tote=3, mug=1)
    assert shopify.post(client, "shop_redact").status_code == 200
    drain(rt)
    assert prices(rt) == {} and levels(rt) == {}


def test_catalog_events_for_an_uninstalled_shop_are_not_applied(rt: Runtime, client) -> None:
    # Given the app was uninstalled / When a product update arrives / Then no price is recorded
    shopify.post(client, "app_uninstalled")
    drain(rt)
    send(rt, client, "products/update", product())
    assert prices(rt) == {}

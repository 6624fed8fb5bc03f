"""Triggered flows on WooCommerce, through signed webhooks and a real Dramatiq worker on Redis: a
product.updated price drop reaches the guest whose draft order held the product; an order.updated to
`completed` starts the cross-sell."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from recovery.storage import tables as t
from recovery.sending.channels import OutboundEmail
from recovery.flows import fanout
from tests.conftest import drain
from tests.loop_helpers import HOUR, abandon_all, now, send_at
from tests.support.fake_woocommerce import load
from tests.woo_helpers import Woo, make_woo


@pytest.fixture
def woo(database_url: str, tmp_path: Path, redis_url: str) -> Iterator[Woo]:
    yield from make_woo(database_url, tmp_path, redis_url=redis_url)


def _gmt(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S")


def test_a_product_updated_price_drop_reaches_the_guest_whose_draft_held_it(woo: Woo) -> None:
    # The guest's draft order: 2 x Stoneware Mug (product 233) at 12.57 a piece (subtotal 25.13), in the
    # shop's currency (product prices are the shop's; a cart in another currency is not compared)
    draft = {**load("order_updated__block_checkout_draft"), "date_modified_gmt": _gmt(now()), "currency": "EUR"}
    assert woo.deliver("order_updated__block_checkout_draft", **draft).status_code == 200
    at = now() + 2 * HOUR
    assert len(abandon_all(woo.rt, at)) == 1
    product = {**load("product_updated"), "id": 233, "name": "Stoneware Mug", "price": "9.90",
               "date_modified_gmt": _gmt(now())}
    assert woo.post("product.updated", product).status_code == 200
    drain(woo.rt)
    with woo.rt.sessions.begin() as session:
        assert dict(fanout.run(session, at, woo.rt.timing)) == {"planned": 1}
    assert "sent" in send_at(woo.rt, at + HOUR)
    [email] = [m for m in woo.fake.sent if isinstance(m, OutboundEmail) and "flow-price_drop" in m.categories]
    assert email.to == "jonas.weber@example.com" and "Stoneware Mug" in email.subject


def test_a_completed_order_records_its_lines_and_its_fulfilment(woo: Woo) -> None:
    with woo.rt.sessions.begin() as session:
        store = session.scalars(select(t.Store).where(t.Store.platform == "woocommerce")).one()
        store.settings = {**(store.settings or {}), "cross_sell": True}
    order = {**load("order_updated__processing"), "status": "completed", "date_modified_gmt": _gmt(now()),
             "date_completed_gmt": _gmt(now())}
    assert woo.post("order.updated", order).status_code == 200
    drain(woo.rt)
    with woo.rt.sessions() as session:
        row = session.scalars(select(t.Order)).one()
        assert row.fulfilled_at is not None
        assert session.scalars(select(t.OrderItem.product_id)).all()
        [signal] = session.scalars(select(t.FlowSignal)).all()
        assert (signal.kind, signal.subject) == ("fulfilled", row.platform_order_id)

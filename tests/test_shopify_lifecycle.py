"""Uninstall and the mandatory compliance topics, checked in the database afterwards."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.runtime import Runtime
from connectors import shopify as shopify_connector
from recovery.storage import tables as t
from tests.conftest import drain
from tests.loop_helpers import HOUR, abandon_all, messages, now, set_store
from tests.support import shopify

ROOT = Path(__file__).resolve().parents[1]


def count(rt: Runtime, model: type) -> int:
    with rt.sessions() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def shop_with_history(rt: Runtime, client) -> None:  # type: ignore[no-untyped-def]
    """A customer who checked out and ordered, and a second shopper with an abandoned cart and plans."""
    set_store(rt, holdout_percent=0)
    shopify.post(client, "checkouts_update")
    drain(rt)
    shopify.post(client, "orders_create")
    shopify.post(client, "checkouts_update__guest_eur")
    drain(rt)
    abandon_all(rt, now() + 2 * HOUR)


def test_toml_subscribes_to_exactly_the_topics_the_code_handles() -> None:
    config = tomllib.loads((ROOT / "shopify.app.toml").read_text())
    subscribed = set()
    for subscription in config["webhooks"]["subscriptions"]:
        subscribed |= set(subscription.get("topics", [])) | set(subscription.get("compliance_topics", []))
    assert subscribed == set(shopify_connector.TOPICS)
    assert {"customers/data_request", "customers/redact", "shop/redact"} <= subscribed
    text = (ROOT / "shopify.app.toml").read_text()
    assert text.count("# Handled by:") == len(config["webhooks"]["subscriptions"])


def test_customers_redact_erases_the_customer_and_keeps_anonymous_figures(runtime: Runtime, client, store_id: int) -> None:
    shop_with_history(runtime, client)
    response = shopify.post(client, "customers_redact")
    drain(runtime)
    assert response.status_code == 200
    with runtime.sessions() as session:
        assert session.scalars(select(t.Customer).where(t.Customer.email == "maren.holloway@example.com")).all() == []
        order = session.scalars(select(t.Order)).one()
        carts = session.scalars(select(t.Cart).order_by(t.Cart.id)).all()
    assert (order.email, order.phone, order.customer_id, order.total) == (None, None, None, order.total)
    redacted, other = carts
    assert (redacted.email, redacted.phone, redacted.first_name, redacted.restore_url) == (None, None, None, None)
    assert (redacted.status, str(redacted.total), len(redacted.line_items)) == ("completed", "132.47", 2)
    assert other.email == "lene.voskamp@example.com"  # another shopper is untouched
    assert "maren.holloway" not in json.dumps([d.payload for d in _deliveries(runtime)])


def test_customers_data_request_exports_what_we_hold(runtime: Runtime, client, store_id: int) -> None:
    shop_with_history(runtime, client)
    shopify.post(client, "customers_data_request")
    drain(runtime)
    with runtime.sessions() as session:
        export = session.scalars(select(t.DataExport)).one()
    assert export.request_id == "4418207"
    assert [c["email"] for c in export.document["customers"]] == ["maren.holloway@example.com"]
    assert [o["platform_order_id"] for o in export.document["orders"]] == ["6148203957289"]
    assert [c["total"] for c in export.document["carts"]] == ["132.47"]


def test_shop_redact_erases_everything_of_the_shop_even_after_uninstall(runtime: Runtime, client, store_id: int) -> None:
    shop_with_history(runtime, client)
    assert messages(runtime) != []
    shopify.post(client, "app_uninstalled")
    drain(runtime)
    response = shopify.post(client, "shop_redact")  # Shopify sends it 48 h after the uninstall
    drain(runtime)
    assert response.status_code == 200
    for model in (t.Store, t.Cart, t.Customer, t.Order, t.RecoveryMessage, t.ExperimentAssignment, t.WebhookDelivery):
        assert count(runtime, model) == 0, model.__tablename__


def test_app_uninstalled_stops_work_and_is_idempotent(runtime: Runtime, client, store_id: int) -> None:
    shop_with_history(runtime, client)
    with runtime.sessions.begin() as session:
        session.get(t.Store, store_id).credentials = b"sealed-token"  # type: ignore[union-attr]
    for _ in range(2):  # it may arrive twice
        assert shopify.post(client, "app_uninstalled").status_code == 200
        drain(runtime)
    with runtime.sessions() as session:
        store = session.get(t.Store, store_id)
    assert store is not None and store.uninstalled_at is not None and store.credentials is None
    assert {m.status for m in messages(runtime)} == {"cancelled"}
    assert {m.reason for m in messages(runtime)} == {"store uninstalled"}
    assert sorted(d.outcome or "" for d in _deliveries(runtime) if d.topic == "app/uninstalled")[0] == "already uninstalled"
    # Later checkouts are recorded, not processed
    payload = shopify.load("checkouts_create")
    payload.update(token="after-uninstall", cart_token="after-uninstall", id=5)
    response = shopify.post(client, "checkouts_create", payload=payload)
    assert response.json["status"] == "not served"


@pytest.mark.parametrize("name", ["customers_redact", "customers_data_request", "shop_redact", "app_uninstalled"])
def test_compliance_topics_with_a_bad_signature_are_401_and_change_nothing(runtime: Runtime, client, store_id: int, name: str) -> None:
    body = json.dumps(shopify.load(name)).encode()
    headers = shopify.headers(body, shopify.topic_of(name), secret="not-our-secret")
    assert client.post("/webhooks/shopify", data=body, headers=headers).status_code == 401
    assert count(runtime, t.WebhookDelivery) == 0 and count(runtime, t.Store) == 1


def _deliveries(rt: Runtime) -> list[t.WebhookDelivery]:
    with rt.sessions() as session:
        return list(session.scalars(select(t.WebhookDelivery)))

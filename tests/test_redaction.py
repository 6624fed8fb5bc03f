"""Issue 18, finding 8: after `customers/redact` no table holds the shopper's email, phone, name or address
in clear, and their opt-outs survive as keyed hashes: a later cart from the same address is not messaged."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, text

from app import create_app
from app.runtime import Runtime, build_runtime
from recovery.consent import records as consent, pseudonym
from recovery.storage import tables as t
from recovery.sending.channels import FakeChannel
from recovery.storage.tables import Base, utcnow
from tests.conftest import add_store, drain, make_settings
from tests.loop_helpers import HOUR, abandon_all, daytime, messages, send_due, set_store
from tests.support import shopify

#: Everything personal the fixtures say about the shopper (checkouts_update, customers_redact).
TRACES = ("maren", "holloway", "8285550147", "828) 555", "juniper hollow", "apt 3b", "28801", "asheville")


@pytest.fixture
def shop(database_url: str, tmp_path: Path) -> Iterator[tuple[Runtime, object, FakeChannel]]:
    email = FakeChannel()
    rt = build_runtime(make_settings(database_url, tmp_path), channels={"email": email, "sms": FakeChannel()}, seed=2)
    add_store(rt)
    set_store(rt, holdout_percent=0)
    yield rt, create_app(runtime=rt).test_client(), email
    rt.close()


def traces(rt: Runtime) -> dict[str, list[str]]:
    """Table → the personal strings found in any of its rows (every column, as text)."""
    found: dict[str, list[str]] = {}
    with rt.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            for row in conn.execute(table.select()):
                blob = json.dumps([str(v) for v in row], ensure_ascii=False).lower()
                hits = [trace for trace in TRACES if trace in blob]
                if hits:
                    found.setdefault(table.name, []).extend(hits)
    return found


def history(rt: Runtime, client, at) -> None:  # type: ignore[no-untyped-def]
    """The shopper abandons a checkout, gets the first email, unsubscribes; the merchant exported their data;
    their SMS consent was withdrawn; the storefront logged an event and a push subscription for the cart."""
    assert shopify.post(client, "checkouts_update").status_code == 200
    drain(rt)
    abandon_all(rt, at)
    assert "sent" in send_due(rt, at + 5 * HOUR)
    first = messages(rt)[0]
    unsubscribe = rt.sender.links.sign("unsubscribe", first.id, first.cart_id)
    assert client.post(f"/u/{unsubscribe}", data={"List-Unsubscribe": "One-Click"}).status_code == 200
    shopify.post(client, "customers_data_request")
    drain(rt)
    with rt.sessions.begin() as session:
        store_id = session.scalar(select(t.Store.id))
        consent.record(session, store_id, "sms", "+1 (828) 555-0147", granted=False, basis="withdrawn",
                       source="sms_keyword", at=utcnow())
        session.add(t.TrackEvent(store_id=store_id, cart_id=first.cart_id, sid="s1", type="exit", at=utcnow()))
        session.add(t.PushSubscription(store_id=store_id, cart_id=first.cart_id, sid="s1",
                                       endpoint="https://fcm.googleapis.com/fcm/send/maren", keys={"p256dh": "x"}))
        first_row = session.get(t.RecoveryMessage, first.id)
        first_row.delivery_error = "550 mailbox maren.holloway@example.com unavailable"  # type: ignore[union-attr]
    assert traces(rt)  # the scan finds them before the redaction


def test_customers_redact_leaves_no_trace_in_any_table(shop) -> None:  # type: ignore[no-untyped-def]
    rt, client, _ = shop
    history(rt, client, daytime(10))
    assert shopify.post(client, "customers_redact").status_code == 200
    drain(rt)
    assert traces(rt) == {}
    with rt.sessions() as session:
        kept = session.scalars(select(t.Suppression).order_by(t.Suppression.channel)).all()
        assert session.scalars(select(t.DataExport)).all() == [] and session.scalars(select(t.Consent)).all() == []
    # What stays: the two opt-outs (email unsubscribe, withdrawn SMS consent), as keyed hashes only.
    key = pseudonym.derive_key(rt.settings.secret_key)
    store_id = kept[0].store_id
    assert [(s.channel, s.address, s.reason) for s in kept] == [
        ("email", pseudonym.pseudonym(key, store_id, "maren.holloway@example.com"), "unsubscribed"),
        ("sms", pseudonym.pseudonym(key, store_id, "+18285550147"), "withdrawn consent"),
    ]


def test_an_opt_out_survives_the_redaction(shop) -> None:  # type: ignore[no-untyped-def]
    rt, client, email = shop
    at = daytime(10)
    history(rt, client, at)
    shopify.post(client, "customers_redact")
    drain(rt)
    sent_before = len(email.sent)
    # Given a later checkout from the same address (new tokens, later activity)
    later = copy.deepcopy(shopify.load("checkouts_update"))
    later.update(id=37214586900999, token="later-token-0001", cart_token="later-cart-0001",
                 updated_at="2026-09-20T14:42:10-04:00", created_at="2026-09-20T14:32:10-04:00")
    assert shopify.post(client, "checkouts_update", payload=later).status_code == 200
    drain(rt)
    abandon_all(rt, at + 100 * HOUR)
    # When its reminders fall due, then none is sent: the hashed opt-outs block email and SMS
    outcomes = send_due(rt, at + 200 * HOUR)
    assert outcomes and "sent" not in outcomes and len(email.sent) == sent_before
    with rt.sessions() as session:
        new_cart = session.scalar(select(t.Cart.id).where(t.Cart.checkout_token == "later-token-0001"))
        reasons = {m.reason for m in session.scalars(select(t.RecoveryMessage).where(
            t.RecoveryMessage.cart_id == new_cart, t.RecoveryMessage.status == "cancelled"))}
    assert reasons == {"address suppressed"}


def test_the_send_check_needs_the_hash_to_block_a_redacted_address(shop) -> None:  # type: ignore[no-untyped-def]
    # The guard alone: with the hashed suppression renamed, the same later cart is messaged.
    rt, client, email = shop
    at = daytime(10)
    history(rt, client, at)
    shopify.post(client, "customers_redact")
    drain(rt)
    with rt.engine.begin() as conn:
        conn.execute(text("UPDATE suppressions SET address = 'hmac:unrelated-' || channel"))
    later = copy.deepcopy(shopify.load("checkouts_update"))
    later.update(id=37214586900999, token="later-token-0001", cart_token="later-cart-0001",
                 updated_at="2026-09-20T14:42:10-04:00")
    shopify.post(client, "checkouts_update", payload=later)
    drain(rt)
    abandon_all(rt, at + 100 * HOUR)
    assert "sent" in send_due(rt, at + 200 * HOUR)

"""Restore, open and unsubscribe links through the real Flask routes."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from app import create_app
from app.runtime import Runtime, build_runtime
from recovery.storage import tables as t
from recovery.sending.channels import FakeChannel
from recovery.messages.links import LinkSigner
from tests.conftest import add_store, drain, make_settings
from tests.loop_helpers import HOUR, abandon_all, daytime, messages, now, send_at, send_due, set_store
from tests.support import shopify


@pytest.fixture
def sent(database_url: str, tmp_path: Path) -> Iterator[tuple[Runtime, object, t.RecoveryMessage]]:
    """A store with one abandoned cart whose first email went out."""
    rt = build_runtime(make_settings(database_url, tmp_path), channels={"email": FakeChannel(), "sms": FakeChannel()}, seed=2)
    add_store(rt)
    set_store(rt, holdout_percent=0)
    client = create_app(runtime=rt).test_client()
    shopify.post(client, "checkouts_update")
    drain(rt)
    at = daytime(10)  # its SMS step (48 h later) falls inside the shopper's legal SMS hours
    abandon_all(rt, at)
    send_due(rt, at + 5 * HOUR)
    yield rt, client, messages(rt)[0]
    rt.close()


def token(rt: Runtime, kind: str, message: t.RecoveryMessage) -> str:
    return rt.sender.links.sign(kind, message.id, message.cart_id)


def test_restore_records_the_click_and_redirects_to_the_platform(sent) -> None:  # type: ignore[no-untyped-def]
    rt, client, message = sent
    response = client.get(f"/r/{token(rt, 'restore', message)}")
    assert response.status_code == 302
    assert response.headers["Location"] == shopify.load("checkouts_update")["abandoned_checkout_url"]
    assert "Set-Cookie" not in response.headers  # nobody is logged in by a link
    first = messages(rt)[0]
    assert first.clicked_at is not None and first.opened_at is not None


@pytest.mark.parametrize("_case", ["tampered", "other kind", "garbage"])
def test_bad_restore_token_gets_a_friendly_4xx_and_records_nothing(sent, _case: str) -> None:  # type: ignore[no-untyped-def]
    rt, client, message = sent
    good = token(rt, "restore", message)
    bad = {"tampered": good[:-2] + ("AA" if not good.endswith("AA") else "BB"), "other kind": token(rt, "unsubscribe", message),
           "garbage": "not-a-token"}[_case]
    response = client.get(f"/r/{bad}")
    assert response.status_code == 400 and b"not valid" in response.data
    assert messages(rt)[0].clicked_at is None


def test_expired_restore_token_is_410(sent, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    rt, client, message = sent
    with monkeypatch.context() as m:  # a link signed 31 days ago (restore links live 30)
        m.setattr("itsdangerous.timed.time.time", lambda: now().timestamp() - 31 * 86400)
        old = token(rt, "restore", message)
    response = client.get(f"/r/{old}")
    assert response.status_code == 410 and b"expired" in response.data
    assert messages(rt)[0].clicked_at is None


def test_open_pixel_records_the_open(sent) -> None:  # type: ignore[no-untyped-def]
    rt, client, message = sent
    response = client.get(f"/o/{token(rt, 'open', message)}")
    assert response.status_code == 200 and response.mimetype == "image/gif"
    assert messages(rt)[0].opened_at is not None
    assert client.get("/o/forged").status_code == 200  # still an image, records nothing


def unsubscribed(rt: Runtime) -> list[t.Suppression]:
    with rt.sessions() as session:
        return list(session.scalars(select(t.Suppression)))


@pytest.mark.parametrize("method", ["one-click", "button"])
def test_unsubscribe_takes_effect_at_once(sent, method: str) -> None:  # type: ignore[no-untyped-def]
    rt, client, message = sent
    url = f"/u/{token(rt, 'unsubscribe', message)}"
    if method == "one-click":  # RFC 8058: the mail client posts this form body, with no cookies
        response = client.post(url, data={"List-Unsubscribe": "One-Click"})
        assert response.status_code == 200
    else:  # the footer link: a page with one button, whose form is the same POST
        page = client.get(url).get_data(as_text=True)
        assert page.count("<button") == 1 and '<form method="post">' in page and unsubscribed(rt) == []
        field = re.search(r'name="([^"]+)" value="([^"]+)"', page)
        assert field is not None
        response = client.post(url, data={field.group(1): field.group(2)})
        assert response.status_code == 200 and b"not get more reminders" in response.data
    with rt.sessions() as session:
        suppression = session.scalars(select(t.Suppression)).one()
    assert (suppression.channel, suppression.address, suppression.reason) == ("email", "maren.holloway@example.com", "unsubscribed")
    statuses = {m.step: (m.status, m.reason) for m in messages(rt)}
    assert statuses[2] == ("cancelled", "unsubscribed") and statuses[4] == ("cancelled", "unsubscribed")
    assert statuses[3][0] == "planned"  # the SMS consent is a separate matter
    sms_due = next(m.due_at for m in messages(rt) if m.step == 3)
    assert send_at(rt, sms_due) == ["sent"]  # only the SMS (when due: quiet hours, 48 h window, shopper cap)


@pytest.mark.parametrize("_case", ["GET (a mail scanner)", "POST without the one-click body", "POST with another body"])
def test_only_the_one_click_post_unsubscribes(sent, _case: str) -> None:  # type: ignore[no-untyped-def]
    rt, client, message = sent
    url = f"/u/{token(rt, 'unsubscribe', message)}"
    response = {
        "GET (a mail scanner)": lambda: client.get(url),
        "POST without the one-click body": lambda: client.post(url),
        "POST with another body": lambda: client.post(url, data={"List-Unsubscribe": "one-click please"}),
    }[_case]()
    assert response.status_code == (200 if _case.startswith("GET") else 400)
    assert unsubscribed(rt) == []
    assert {m.status for m in messages(rt)} <= {"sent", "planned"}


def test_forged_unsubscribe_changes_nothing(sent) -> None:  # type: ignore[no-untyped-def]
    rt, client, message = sent
    assert client.post("/u/forged", data={"List-Unsubscribe": "One-Click"}).status_code == 400
    with rt.sessions() as session:
        assert session.scalars(select(t.Suppression)).all() == []


@pytest.mark.parametrize("_case", ["signed with another key", "a restore token", "an open token"])
def test_a_well_formed_token_of_the_wrong_key_or_kind_unsubscribes_no_one(sent, _case: str) -> None:  # type: ignore[no-untyped-def]
    # Each token below is well formed and names the real message and cart; only the signature or kind is wrong.
    rt, client, message = sent
    bad = {
        "signed with another key": LinkSigner("some-other-installation-key").sign("unsubscribe", message.id, message.cart_id),
        "a restore token": token(rt, "restore", message),
        "an open token": token(rt, "open", message),
    }[_case]
    assert client.post(f"/u/{bad}", data={"List-Unsubscribe": "One-Click"}).status_code == 400
    assert client.get(f"/u/{bad}").status_code == 400
    assert unsubscribed(rt) == [] and {m.status for m in messages(rt)} <= {"sent", "planned"}


def test_a_tracker_cart_without_a_platform_link_restores_by_cart_permalink(sent) -> None:  # type: ignore[no-untyped-def]
    rt, client, message = sent
    with rt.sessions.begin() as session:  # known only from the storefront tracker: no checkout URL
        cart = session.get(t.Cart, message.cart_id)
        cart.restore_url = None
        items = [(str(i["variant_id"]), i["quantity"]) for i in cart.line_items]
        domain = session.get(t.Store, cart.store_id).domain
    response = client.get(f"/r/{token(rt, 'restore', message)}")
    assert response.status_code == 302
    assert response.headers["Location"] == f"https://{domain}/cart/" + ",".join(f"{v}:{q}" for v, q in items)

"""Reminders for the real store's carts, sent by CartResQ's own abandoner and sender on the app's database (as
its worker would) against the store's REST API: coupons only for messages that passed their checks, and a
working restore link for a cart known only from the storefront."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.realwoo.checks import OPT_IN, carts, processed, store_api_cart, watch
from tests.realwoo.store import RealWoo, wait_for

Connected = tuple[RealWoo, str]


def _abandon_and_send(rw: RealWoo, tmp_path: Path) -> Path:
    """The abandoner, then the sender for what is due, run here on the app's database as the app's worker
    would (two hours on, then five more), against the store's REST API; emails go to the outbox returned."""
    from app.runtime import build_runtime
    from tests.conftest import make_settings
    from tests.loop_helpers import HOUR, abandon_all, now, send_due

    settings = make_settings(rw.pg_url, tmp_path, encryption_keys=(rw.env["CARTRESQ_ENCRYPTION_KEY"],),
                             allow_private_hosts=True, app_url=rw.app_url, secret_key=rw.env["SECRET_KEY"])
    rt = build_runtime(settings)
    try:
        at = now() + 2 * HOUR
        abandon_all(rt, at)
        send_due(rt, at + 5 * HOUR)
    finally:
        rt.close()
    return tmp_path / "outbox"


def _restore_link(outbox: Path, to: str, app_url: str) -> str:
    """The cart link (`<APP_URL>/r/...`) of the email sent to `to`."""
    from email import policy
    from email.parser import BytesParser

    for path in sorted((outbox / "email").glob("*.eml")):
        message = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
        if message["To"] and to in str(message["To"]):
            text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
            links = re.findall(re.escape(app_url) + r"/r/[^\s\"<>)\]]+", text)
            assert links, text[:2000]
            return links[0]
    raise AssertionError(f"no email to {to} in {outbox}")


@dataclass(frozen=True)
class Sent:
    """Three carts abandoned, then their first reminders sent: an offer step (15 %, a coupon each)."""

    german: str  # checkout token of a German guest's order, no opt-in: no consent
    american: str  # checkout token of a US guest's order: no prior consent needed
    tracked: str  # email of a shopper who left the classic checkout: a cart known only from the storefront
    outbox: Path


@pytest.fixture(scope="package")
def sent(connected: Connected, browser: Any, tmp_path_factory: pytest.TempPathFactory) -> Sent:
    """One pass of the abandoner and the sender for all three carts (each pass builds a runtime and sends)."""
    rw, _ = connected
    email = f"tracked.{rw.storage}@example.com"
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"{rw.store_url}/?add-to-cart=12&quantity=2")
        page.goto(rw.classic_checkout())
        page.wait_for_selector("#billing_email", timeout=30000)
        key = store_api_cart(page)["extensions"]["cartresq"]["cart_key"]
        page.fill("#billing_email", email)
        page.locator("#billing_email").blur()
        page.locator(OPT_IN).first.check()
        row = wait_for("the tracker's cart", lambda: next(iter(rw.rows(
            "SELECT restore_url, checkout_token FROM carts WHERE cart_token = :k AND email = :e "
            "AND total > 0", k=key, e=email)), None), timeout=30)
    finally:
        context.close()
    assert (row.restore_url, row.checkout_token) == (None, None)  # known only from the storefront
    [german] = rw.wpq("create-admin-orders", "1:DE")
    [american] = rw.wpq("create-admin-orders", "1:US")
    rw.run_queue()
    tokens = [f"wc-order-{german['id']}", f"wc-order-{american['id']}"]
    wait_for("the carts", lambda: len(carts(rw, tokens)) == 2 and processed(rw))
    rw.store("set", 'sequence=[{"channel":"email","template":"offer","delay":"1h"}]', "offer_percent=15",
             "holdout_percent=0")
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("REQUESTS_CA_BUNDLE", rw.ca)  # requests lets the environment override verify=
            outbox = _abandon_and_send(rw, tmp_path_factory.mktemp(f"sent-{rw.storage}"))
    finally:
        rw.store("unset", "sequence", "offer_percent", "holdout_percent")
    return Sent(tokens[0], tokens[1], email, outbox)


def test_a_coupon_is_made_only_for_a_message_that_passed_its_checks(connected: Connected, sent: Sent) -> None:
    """The German guest's offer is cancelled (no consent) without a code; the US guest's goes with one, made
    on the store for the address it went to."""
    rw, _ = connected

    def first(token: str) -> Any:
        rows = rw.rows("SELECT m.status, m.reason, c.email, d.code FROM carts c JOIN recovery_messages m ON "
                       "m.cart_id = c.id LEFT JOIN discount_codes d ON d.message_id = m.id "
                       "WHERE c.checkout_token = :t ORDER BY m.step", t=token)
        assert rows, f"no message for {token}"
        return rows[0]

    blocked, went = first(sent.german), first(sent.american)
    assert (blocked.status, blocked.code) == ("cancelled", None), blocked
    assert went.status == "sent" and went.code, went
    coupon = rw.wpq("coupon", went.code)
    assert (coupon["amount"], coupon["email_restrictions"]) == ("15", [went.email])
    # No code anywhere for a message that did not go (this store's other carts had their reminders too)
    assert rw.rows("SELECT count(*) FROM discount_codes d JOIN recovery_messages m ON m.id = d.message_id "
                   "WHERE m.status <> 'sent'")[0][0] == 0


def test_a_cart_known_only_from_the_storefront_gets_a_working_restore_link(
    connected: Connected, browser: Any, sent: Sent
) -> None:
    """The reminder's link rebuilds the cart from its recorded items through the plugin's signed restore
    endpoint, in another browser (no session), with the shopper's email at checkout."""
    rw, _ = connected
    link = _restore_link(sent.outbox, sent.tracked, rw.app_url)
    context = browser.new_context()
    try:
        page = context.new_page()
        problems = watch(page)
        page.goto(link)
        page.wait_for_url(f"{rw.store_url}/checkout/", timeout=30000)
        cart = store_api_cart(page)
    finally:
        context.close()
    assert [(item["id"], item["quantity"]) for item in cart["items"]] == [(12, 2)]
    assert cart["billing_address"]["email"] == sent.tracked
    assert problems == [], problems

"""WooCommerce activation (wc-auth) ends in the merchant's account: the return page hands over a single-use
link that creates the account (the merchant sets a password) or joins an existing one."""

from __future__ import annotations

import html
import re
from pathlib import Path

import requests
from sqlalchemy import select

from recovery.storage import tables as t
from tests.merchant_helpers import PASSWORD, make_account, token_for
from tests.support.fake_woocommerce import activate
from tests.woo_helpers import make_woo


def _claim_path(page_text: str) -> str:
    link = html.unescape(re.search(r'href="([^"]+/app/claim/[^"]+)"', page_text).group(1))
    return "/app/" + link.split("/app/", 1)[1]


def test_activation_ends_by_creating_the_merchants_account(sqlite_url: str, tmp_path: Path) -> None:
    for woo in make_woo(sqlite_url, tmp_path, activated=False):
        page = activate(woo.live.url, woo.store)
        assert page.status_code == 200 and "Set up your CartResQ account" in page.text
        path = _claim_path(page.text)
        # The return URL is single-use too: replayed (history, proxy logs) it mints no second link to the store.
        replay = requests.get(page.url, timeout=30)
        assert replay.status_code == 400 and "/app/claim/" not in replay.text
        client = woo.client
        form = token_for(client, path)
        assert client.post(path, data={"csrf_token": form, "email": "owner@example.com",
                                       "password": "short"}).status_code == 400
        made = client.post(path, data={"csrf_token": form, "email": "owner@example.com", "password": PASSWORD})
        assert made.status_code == 303 and made.headers["Location"].endswith("/app/setup")
        setup = client.get("/app/setup")
        row = woo.store_row()
        assert setup.status_code == 200 and (row.name or row.domain) in setup.get_data(as_text=True)
        assert client.get(path).status_code == 404  # single use
        with woo.rt.sessions() as db:
            [account] = db.scalars(select(t.MerchantAccount)).all()
            links = [x.store_id for x in db.scalars(select(t.AccountStore))]
        assert account.email == "owner@example.com" and links == [row.id]


def test_a_second_store_joins_an_existing_account_with_its_password(sqlite_url: str, tmp_path: Path) -> None:
    for woo in make_woo(sqlite_url, tmp_path, activated=False):
        with woo.rt.sessions.begin() as db:
            other = t.Store(platform="shopify", domain="amber-loom.myshopify.com", settings={}, plan="free",
                            timezone="UTC", currency="USD")
            db.add(other)
            db.flush()
            other_id = other.id
        make_account(woo.rt, "owner@example.com", other_id)
        path = _claim_path(activate(woo.live.url, woo.store).text)
        client = woo.client
        form = token_for(client, path)
        wrong = client.post(path, data={"csrf_token": form, "email": "owner@example.com", "password": "wrong one!!"})
        assert wrong.status_code == 400
        joined = client.post(path, data={"csrf_token": form, "email": "owner@example.com", "password": PASSWORD})
        assert joined.status_code == 303
        woo_id = woo.store_row().id
        with woo.rt.sessions() as db:
            assert {x.store_id for x in db.scalars(select(t.AccountStore))} == {other_id, woo_id}
        page = client.get("/app/").get_data(as_text=True)
        assert 'name="store"' in page  # two stores: the switcher

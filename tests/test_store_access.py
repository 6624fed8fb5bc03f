"""Issue 18, finding 2: no store data without authentication, and every view scoped to the caller's stores.

Two shops whose carts, masked addresses, totals and recovered revenue are all distinct: the operator sees
both, a Shopify session sees its own shop only, anyone else gets 401."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from app import create_app
from app.web import access
from app.runtime import Runtime
from recovery.storage import tables as t
from recovery.config.settings import Settings
from tests.conftest import ADMIN_TOKEN, add_store
from tests.shopify_app_helpers import API_KEY, SECRET, fake, install, rt, web  # noqa: F401
from tests.support.fake_shopify import session_token

SHOP_A, SHOP_B = "amber-loom.myshopify.com", "birch-kiln.myshopify.com"
#: What each shop's page may show, and what the other's must never.
SEEN = {
    SHOP_A: ("a•••@amber.example.com", "111.11", "987.65"),
    SHOP_B: ("b•••@birch.example.com", "222.22", "543.21"),
}


def seed(rt: Runtime, domain: str, email: str, cart_total: str, revenue: str, currency: str) -> None:
    with rt.sessions() as session:
        store_id = session.scalar(select(t.Store.id).where(t.Store.domain == domain))
    store_id = store_id or add_store(rt, domain)
    with rt.sessions.begin() as session:
        now = t.utcnow()
        cart = t.Cart(store_id=store_id, email=email, currency=currency, subtotal=Decimal(cart_total),
                      total=Decimal(cart_total), platform_updated_at=now, last_activity_at=now, status="recovered")
        session.add(cart)
        session.flush()
        session.add(t.RecoveryMessage(store_id=store_id, cart_id=cart.id, step=1, channel="email", template="reminder",
                                      due_at=now - timedelta(hours=1), status="cancelled",
                                      reason=f"bounced: {email} +1 828 555 0147 unknown"))
        session.add(t.Order(store_id=store_id, platform_order_id=f"o-{domain}", cart_id=cart.id, currency=currency,
                            total=Decimal(revenue), placed_at=now, attribution="recovered"))


def seed_both(rt: Runtime) -> None:
    seed(rt, SHOP_A, "alma.reyes@amber.example.com", "111.11", "987.65", "USD")
    seed(rt, SHOP_B, "bo.lindqvist@birch.example.com", "222.22", "543.21", "EUR")  # another currency: the operator's page lists both revenues


def page_of(response) -> str:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.get_data(as_text=True)[:200]
    return response.get_data(as_text=True)


def test_self_hosted_dashboard_needs_the_operator_token(runtime: Runtime, self_hosted_client) -> None:
    seed_both(runtime)
    client = self_hosted_client
    token = client.environ_base.pop("HTTP_AUTHORIZATION")
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic b3A6d3Jvbmc="}):
        response = client.get("/", headers=headers)
        assert response.status_code == 401 and response.headers["WWW-Authenticate"].startswith("Basic")
        assert "amber" not in response.get_data(as_text=True)
    page = page_of(client.get("/", headers={"Authorization": token}))
    basic = page_of(client.get("/", auth=("operator", ADMIN_TOKEN)))
    # The operator sees both shops; no page shows a full address or a phone number.
    for shown in (page, basic):
        assert all(v in shown for values in SEEN.values() for v in values)
        assert "alma.reyes@" not in shown and "bo.lindqvist@" not in shown and "555 0147" not in shown


def test_without_shopify_keys_or_operator_token_nothing_is_shown(runtime: Runtime) -> None:
    seed_both(runtime)
    bare = create_app(runtime=dataclasses.replace(runtime, shopify=None)).test_client()
    assert bare.get("/").status_code == 401
    assert bare.get("/", headers={"Authorization": "Bearer "}).status_code == 401


@pytest.mark.parametrize("mine, theirs", [(SHOP_A, SHOP_B), (SHOP_B, SHOP_A)])
def test_a_shopify_session_sees_its_own_shop_only(rt: Runtime, web, mine: str, theirs: str) -> None:  # noqa: F811
    install(web, SHOP_A)
    install(web, SHOP_B)
    seed_both(rt)
    page = page_of(web.get("/", headers={"Authorization": f"Bearer {session_token(mine, API_KEY, SECRET)}"}))
    assert all(v in page for v in SEEN[mine])
    assert not any(v in page for v in SEEN[theirs])
    assert "@birch" not in page if mine == SHOP_A else "@amber" not in page


def test_a_session_for_a_shop_without_a_store_sees_no_store(rt: Runtime, web, fake) -> None:  # noqa: F811
    seed_both(rt)
    fake.exchange_error = "invalid_subject_token"  # the shop cannot be installed: it has no store here
    page = page_of(web.get("/", headers={"Authorization": f"Bearer {session_token('cold-fen.myshopify.com', API_KEY, SECRET)}"}))
    assert not any(v in page for values in SEEN.values() for v in values)


@pytest.mark.parametrize("host, refused", [
    ("127.0.0.1", False), ("::1", False), ("localhost", False), ("0.0.0.0", True), ("192.0.2.10", True), ("::", True),
])
def test_serving_on_a_public_address_needs_the_token(host: str, refused: bool) -> None:
    bare = Settings(database_url="sqlite://")
    if refused:
        with pytest.raises(SystemExit, match="CARTRESQ_ADMIN_TOKEN"):
            access.check_exposure(bare, [host])
    else:
        access.check_exposure(bare, [host])
    access.check_exposure(dataclasses.replace(bare, admin_token="x" * 32), [host])  # with a token: fine
    short = dataclasses.replace(bare, admin_token="x" * 23)  # guessable: refused where others can reach it
    if refused:
        with pytest.raises(SystemExit, match="fewer than 24"):
            access.check_exposure(short, [host])
    else:
        access.check_exposure(short, [host])


def test_the_gunicorn_factory_refuses_a_public_bind_without_the_token(monkeypatch, tmp_path) -> None:
    from gunicorn.config import Config

    cfg = Config()
    cfg.set("bind", ["0.0.0.0:8000"])
    monkeypatch.delenv("CARTRESQ_ADMIN_TOKEN", raising=False)
    monkeypatch.delenv("SHOPIFY_API_KEY", raising=False)
    monkeypatch.setenv("CARTRESQ_VAR_DIR", str(tmp_path))

    class Worker:  # what gunicorn's worker is when it calls the factory: an object with `cfg`
        def __init__(self) -> None:
            self.cfg = cfg

        def load_wsgi(self) -> object:
            return create_app()

    with pytest.raises(SystemExit, match="0.0.0.0"):
        Worker().load_wsgi()

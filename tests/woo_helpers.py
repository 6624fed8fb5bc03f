"""Fixtures for WooCommerce tests: our app on a real port, a fake store, and an activated connection."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from app import create_app
from app.runtime import Runtime, build_runtime
from recovery.storage import tables as t
from recovery.sending.channels import FakeChannel
from tests.conftest import drain, make_settings
from tests.support.fake_woocommerce import FakeWooCommerce, LiveApp, activate, load


@dataclass
class Woo:
    rt: Runtime
    client: Any
    store: FakeWooCommerce
    live: LiveApp
    fake: FakeChannel

    @property
    def webhook_path(self) -> str:
        return "/" + self.store.hook_for("order.updated")["delivery_url"].split("/", 3)[3]

    def post(self, topic: str, payload: dict[str, Any], **kw: Any) -> Any:
        body, headers = self.store.signed(topic, payload, **kw)
        return self.client.post(self.webhook_path, data=body, headers=headers)

    def deliver(self, name: str, **changes: Any) -> Any:
        payload = {**load(name), **changes}
        topic = "order.created" if name.startswith("order_created") else "order.updated"
        response = self.post(topic, payload)
        drain(self.rt)
        return response

    def store_row(self) -> t.Store:
        with self.rt.sessions() as session:
            return session.scalars(select(t.Store).where(t.Store.platform == "woocommerce")).one()


def make_woo(
    database_url: str,
    tmp_path: Path,
    *,
    activated: bool = True,
    redis_url: str | None = None,
    outbox: bool = False,
    **settings: Any,
) -> Iterator[Woo]:
    """`outbox=True`: messages go through the real channels to the local outbox instead of a FakeChannel."""
    store = FakeWooCommerce().start()
    live = LiveApp()
    fake = FakeChannel()
    rt = build_runtime(
        make_settings(database_url, tmp_path, redis_url=redis_url, app_url=live.url, woo_allow_http=True,
                      allow_private_hosts=True, **settings),  # the fake store listens on 127.0.0.1
        channels=None if outbox else {"email": fake, "sms": fake, "push": fake},
        seed=3,
    )
    app = create_app(runtime=rt)
    live.start(app)
    woo = Woo(rt, app.test_client(), store, live, fake)
    try:
        if activated:
            page = activate(live.url, store)
            assert page.status_code == 200 and "CartResQ is connected" in page.text, page.text
            with rt.sessions.begin() as session:
                row = session.scalars(select(t.Store).where(t.Store.platform == "woocommerce")).one()
                row.settings = {**(row.settings or {}), "holdout_percent": 0}
        yield woo
    finally:
        live.stop()
        store.stop()
        rt.close()


@pytest.fixture
def woo(database_url: str, tmp_path: Path) -> Iterator[Woo]:
    yield from make_woo(database_url, tmp_path)


@pytest.fixture
def woo_any_broker(
    database_url: str, tmp_path: Path, broker_kind: str, request: pytest.FixtureRequest
) -> Iterator[Woo]:
    """The same, with deliveries processed by a real Dramatiq worker on the in-process broker or on Redis."""
    redis_url = request.getfixturevalue("redis_url") if broker_kind == "redis" else None
    yield from make_woo(database_url, tmp_path, redis_url=redis_url)

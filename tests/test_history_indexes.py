"""The lookups whose cost would grow with history are index probes (migration 0124; `cartresq bench history`
found the send check reading every order of the store for each send batch). Real PostgreSQL: the statements
the code sends, EXPLAINed on a store with 5,000 past carts and orders, use the shopper-key indexes."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.orm import Session

from tests.conftest import SHOP

from recovery.sending.checks import _shoppers_who_ordered
from recovery.sequence.abandonment import _supersede
from recovery.storage import tables as t
from recovery.storage.db import make_engine


def _plans(pg_url: str, call: Any) -> list[str]:
    """Run `call(session, carts)` and EXPLAIN each statement it sent on carts or orders."""
    engine = make_engine(pg_url)
    sent: list[tuple[str, Any]] = []

    def record(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("SELECT") and re.search(r"\bFROM (orders|carts)\b", statement):
            sent.append((statement, parameters))

    now = t.utcnow()
    carts = [t.Cart(id=100_000 + i, store_id=0, email=f"shopper-{i}@example.com", phone=f"+1828555{i:04d}",
                    customer_id=None, last_activity_at=now - timedelta(hours=2), abandon_at=now - timedelta(hours=1),
                    currency="USD", subtotal=Decimal(1), total=Decimal(1), status="active")
             for i in range(3)]  # fmt: skip
    try:
        with engine.connect() as conn, conn.begin():
            # A store with history: its store_id alone selects every row, so only the shopper keys narrow it.
            store = conn.scalar(text("INSERT INTO stores (platform, domain, settings, timezone, currency, plan, installed_at) "
                                     "VALUES ('shopify', :shop, '{}', 'UTC', 'USD', 'free', now()) RETURNING id"), {"shop": SHOP})
            conn.execute(text(
                "INSERT INTO carts (store_id, checkout_token, email, phone, currency, subtotal, total, line_items, status,"
                " source, platform_updated_at, last_activity_at, abandon_at, accepts_email, accepts_sms, created_at,"
                " updated_at) SELECT :s, 'past-' || g, 'past-' || g || '@example.com', '+1202555' || lpad(g::text, 4, '0'),"
                " 'USD', 1, 1, '[]', 'abandoned', 'webhook', now(), now(), now(), false, false, now(), now()"
                " FROM generate_series(1, 5000) g"), {"s": store})
            conn.execute(text(
                "INSERT INTO orders (store_id, platform_order_id, email, phone, currency, total, placed_at, attribution,"
                " created_at) SELECT :s, 'o-' || g, 'past-' || g || '@example.com', '+1202555' || lpad(g::text, 4, '0'),"
                " 'USD', 1, now(), 'completed', now() FROM generate_series(1, 5000) g"), {"s": store})
            conn.execute(text("ANALYZE carts, orders"))
            for cart in carts:
                cart.store_id = store
            event.listen(engine, "before_cursor_execute", record)
            call(Session(bind=conn), carts)
            event.remove(engine, "before_cursor_execute", record)
            plans = ["\n".join(row[0] for row in conn.exec_driver_sql("EXPLAIN " + sql, params)) for sql, params in sent]
            conn.rollback()
    finally:
        engine.dispose()
    assert plans, "no lookup was sent"
    return plans


def test_the_send_checks_order_lookup_is_index_probes(pg_url: str) -> None:
    [plan] = _plans(pg_url, _shoppers_who_ordered)
    assert "Seq Scan" not in plan, plan
    assert "ix_orders_store_email" in plan and "ix_orders_store_phone" in plan, plan


def test_the_abandoners_other_carts_lookup_is_index_probes(pg_url: str) -> None:
    plans = _plans(pg_url, _supersede)
    assert not any("Seq Scan on carts" in plan for plan in plans), plans
    assert any("ix_carts_store_phone" in plan and "ix_carts_store_email" in plan for plan in plans), plans

"""`cartresq bench dashboard` at a tiny size: it seeds its own database, times every page, and the seeded
daily figures equal a recount from the base tables."""

from __future__ import annotations

import uuid

import psycopg
from sqlalchemy import select

from app.bench import dashboard, dashboard_seed
from recovery.measure import figures
from recovery.storage import tables as t
from recovery.storage.db import make_engine, make_sessionmaker
from tests.support import services


def test_the_dashboard_bench_seeds_and_times_every_page() -> None:
    admin = services.PG_ADMIN_URL
    try:
        psycopg.connect(admin, connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        services.unavailable("PostgreSQL", exc)
    name = f"cartresq_test_dash_{uuid.uuid4().hex[:8]}"
    try:
        result = dashboard.run_dashboard(database=name, admin_url=admin, repeats=2, carts=3000, stores=6)
        assert result["seeded"]["counts"]["carts"] == 3000 and result["seeded"]["counts"]["stores"] == 6
        assert {r["page"] for r in result["pages"]} == set(dashboard.pages(_any_pick()).keys())
        assert len(result["pages"]) == 2 * len(dashboard.pages(_any_pick())) and all(r["p95_ms"] > 0 for r in result["pages"])
        assert "target p95 <= 300 ms" in dashboard.format_dashboard(result)
        engine = make_engine(dashboard_seed.sqlalchemy_url(admin, name))
        with make_sessionmaker(engine)() as session:
            for store in session.scalars(select(t.Store).order_by(t.Store.id).limit(2)):
                tz = figures.zone(store.timezone)
                days = {d for (d,) in session.execute(select(t.DailyFigure.day).where(t.DailyFigure.store_id == store.id))}
                stored = session.scalars(select(t.DailyFigure).where(t.DailyFigure.store_id == store.id)).all()
                counted = figures.count_directly(session, store.id, sorted(days), tz)
                key = lambda r: tuple(str(r[k]) for k in ("day", "step", "channel", "currency", *figures.COUNTS, *figures.CART_COUNTS))  # noqa: E731
                assert sorted(map(key, (r.__dict__ for r in stored))) == sorted(map(key, counted)) and stored
        engine.dispose()
    finally:
        with psycopg.connect(admin, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _any_pick() -> dict[str, object]:
    return {"domain": "x.myshopify.com", "cursor": "c", "email_prefix": "e", "order": "#1", "cart": 1}

"""The plan limit policy (recovery/billing): the last slot under concurrency, once per cart per period,
holdout carts counting, periods rolling without news."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import select

from recovery.storage import tables as t
from recovery.billing.plans import PERIOD, current_period_end
from recovery.billing.usage import PlanLimits, period_of
from recovery.storage.db import make_engine, make_sessionmaker
from recovery.storage.schema import upgrade
from tests.support.locks import wait_until_lock_wait

LIMITS = PlanLimits(frozenset({"shopify"}))
NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
PERIOD_END = datetime(2026, 12, 1, tzinfo=UTC)


def seed(sessions, allowance_used: int, carts: int, plan: str = "starter") -> tuple[int, list[int]]:  # type: ignore[no-untyped-def]
    with sessions.begin() as session:
        store = t.Store(platform="shopify", domain="quartz-dune.myshopify.com", settings={}, timezone="UTC", currency="USD")
        session.add(store)
        session.flush()
        session.add(t.StoreBilling(store_id=store.id, provider="shopify", plan=plan, status="active", period_end=PERIOD_END))
        session.add(t.PlanUsage(store_id=store.id, period_end=PERIOD_END, allowance=500, used=allowance_used, granted=0))
        ids = []
        for i in range(carts):
            cart = t.Cart(store_id=store.id, checkout_token=f"c{i}", email=f"s{i}@example.com", currency="USD",
                          subtotal=Decimal("10"), total=Decimal("10"), platform_updated_at=NOW, last_activity_at=NOW,
                          abandon_at=NOW - timedelta(minutes=10 - i), line_items=[])
            session.add(cart)
            session.flush()
            ids.append(cart.id)
        return store.id, ids


def admit(sessions, cart_ids: list[int]) -> dict[int, str]:  # type: ignore[no-untyped-def]
    with sessions.begin() as session:
        carts = session.scalars(select(t.Cart).where(t.Cart.id.in_(cart_ids)).with_for_update()).all()
        stores = {s.id: s for s in session.scalars(select(t.Store))}
        return LIMITS.admit(session, stores, carts, NOW)


def test_two_workers_one_slot_exactly_one_passes(pg_url: str) -> None:
    upgrade(pg_url)
    engine = make_engine(pg_url)
    sessions = make_sessionmaker(engine)
    store_id, (first, second) = seed(sessions, allowance_used=499, carts=2)
    results: dict[str, dict[int, str]] = {}
    holding, release = threading.Event(), threading.Event()

    def worker_a() -> None:  # takes the last slot, and keeps its transaction open until told
        with sessions.begin() as session:
            carts = session.scalars(select(t.Cart).where(t.Cart.id == first).with_for_update()).all()
            results["a"] = LIMITS.admit(session, {store_id: session.get(t.Store, store_id)}, carts, NOW)
            holding.set()
            release.wait(30)

    def worker_b() -> None:
        results["b"] = admit(sessions, [second])

    a = threading.Thread(target=worker_a)
    a.start()
    assert holding.wait(30)
    b = threading.Thread(target=worker_b)
    b.start()
    assert wait_until_lock_wait(engine, b) == "waiting"  # B is blocked on the usage row A updated
    release.set()
    a.join(30)
    b.join(30)
    assert results == {"a": {}, "b": {second: "plan_limit"}}
    with sessions() as session:
        usage = session.get(t.PlanUsage, (store_id, PERIOD_END))
        assert (usage.used, usage.allowance) == (500, 500)
        assert usage.notice_80_at is not None and usage.notice_100_at is not None
        outcomes = dict(session.execute(select(t.PlanCart.cart_id, t.PlanCart.outcome)).all())
        assert outcomes == {first: "counted", second: "held"}
    engine.dispose()


def test_a_cart_counts_once_per_period_and_holdout_carts_count(database_url: str) -> None:
    upgrade(database_url)
    engine = make_engine(database_url)
    sessions = make_sessionmaker(engine)
    store_id, carts = seed(sessions, allowance_used=497, carts=3)
    assert admit(sessions, carts[:2]) == {}  # two slots taken (whatever their holdout group: the caller asks)
    assert admit(sessions, carts[:2]) == {}  # abandoned again in the same period: no new slot
    assert admit(sessions, carts[2:]) == {}  # the last slot
    with sessions.begin() as session:
        assert session.get(t.PlanUsage, (store_id, PERIOD_END)).used == 500
        session.add(t.Cart(store_id=store_id, checkout_token="late", email="late@example.com", currency="USD",
                           subtotal=Decimal("1"), total=Decimal("1"), platform_updated_at=NOW, last_activity_at=NOW,
                           abandon_at=NOW, line_items=[]))
    with sessions() as session:
        late = session.scalar(select(t.Cart.id).where(t.Cart.checkout_token == "late"))
    assert admit(sessions, [late]) == {late: "plan_limit"}
    with sessions.begin() as session:  # upgrade: Growth's allowance applies to the same period at once
        session.get(t.StoreBilling, store_id).plan = "growth"
    assert admit(sessions, [late]) == {}
    with sessions() as session:
        usage = session.get(t.PlanUsage, (store_id, PERIOD_END))
        assert (usage.used, usage.allowance) == (501, 2000)
    engine.dispose()


def test_periods_roll_by_30_days_without_news() -> None:
    end = datetime(2026, 1, 1, tzinfo=UTC)
    assert current_period_end(end, end - timedelta(seconds=1)) == end
    assert current_period_end(end, end) == end + PERIOD
    assert current_period_end(end, end + 2 * PERIOD + timedelta(days=1)) == end + 3 * PERIOD
    store = t.Store(platform="shopify", domain="x.myshopify.com", installed_at=end)
    assert period_of(store, None, end + timedelta(days=45)) == end + 2 * PERIOD


def test_the_operator_sets_an_enterprise_plan_from_the_command_line(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from click.testing import CliRunner

    from app.cli import main
    from tests.conftest import ENCRYPTION_KEY

    monkeypatch.setenv("CARTRESQ_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("CARTRESQ_ENCRYPTION_KEY", ENCRYPTION_KEY)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    cli = CliRunner()
    assert cli.invoke(main, ["store", "add", "--platform", "woocommerce", "--shop", "shop.example.com"]).exit_code == 0
    done = cli.invoke(main, ["store", "plan", "shop.example.com", "enterprise"])
    assert done.exit_code == 0 and "plan enterprise active" in done.output, done.output
    assert cli.invoke(main, ["store", "plan", "shop.example.com", "platinum"]).exit_code == 2
    engine = make_engine(f"sqlite:///{tmp_path / 'var' / 'cartresq.db'}")
    with make_sessionmaker(engine)() as session:
        row = session.scalars(select(t.StoreBilling)).one()
        assert (row.provider, row.plan, row.status) == ("manual", "enterprise", "active")
    engine.dispose()
    assert "ended" not in cli.invoke(main, ["store", "plan", "shop.example.com", "none"]).output


def test_the_banner_speaks_at_80_and_100_percent_and_only_where_billing_applies(database_url: str) -> None:
    from recovery.billing.usage import plan_banner

    engine = make_engine(database_url)
    sessions = make_sessionmaker(engine)
    store_id, _ = seed(sessions, allowance_used=399, carts=0)
    with sessions() as session:
        store = session.get(t.Store, store_id)
        assert plan_banner(session, store, NOW, LIMITS) is None  # 399 of 500
        assert plan_banner(session, store, NOW, None) is None  # billing off
    with sessions.begin() as session:
        session.get(t.PlanUsage, (store_id, PERIOD_END)).used = 400
    with sessions() as session:
        store = session.get(t.Store, store_id)
        assert plan_banner(session, store, NOW, LIMITS).startswith("80 % of this period's plan used: 400 of 500")
        assert plan_banner(session, store, NOW, PlanLimits(frozenset({"woocommerce"}))) is None
    with sessions.begin() as session:
        session.get(t.PlanUsage, (store_id, PERIOD_END)).used = 500
        session.get(t.StoreBilling, store_id).status = "frozen"
    with sessions() as session:
        assert plan_banner(session, session.get(t.Store, store_id), NOW, LIMITS).startswith("No active plan")
    engine.dispose()


def test_one_trial_per_store_never_a_new_one_per_plan_change() -> None:
    from datetime import UTC, datetime, timedelta
    from types import SimpleNamespace

    from recovery.billing.plans import TRIAL_DAYS, trial_days_left

    now = datetime(2026, 12, 7, 12, tzinfo=UTC)
    assert trial_days_left(None, now) == TRIAL_DAYS  # never subscribed: the whole trial
    assert trial_days_left(SimpleNamespace(trial_ends_at=now + timedelta(days=3, hours=12)), now) == 4
    assert trial_days_left(SimpleNamespace(trial_ends_at=now - timedelta(days=1)), now) == 0
    assert trial_days_left(SimpleNamespace(trial_ends_at=None), now) == 0  # subscribed before, no trial known

"""Holdout by shopper, logged send decisions with propensities, and training/evaluating on them,
on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from app.cli import main
from app.runtime import Runtime, build_runtime
from recovery.storage import tables as t
from recovery.sending.channels import FakeChannel
from recovery.measure.send_log import logged_sends, ordered_within_window
from tests.conftest import add_store, make_settings
from tests.loop_helpers import HOUR, abandon_all, now, set_store


def _runtime(database_url: str, tmp_path: Path, **settings: object) -> Runtime:
    runtime = build_runtime(make_settings(database_url, tmp_path, **settings), channels={"email": FakeChannel()}, seed=5)
    add_store(runtime)
    return runtime


def _carts(rt: Runtime, emails: list[str], hour: int = 0, at: datetime | None = None) -> None:
    with rt.sessions.begin() as session:
        store = session.scalars(select(t.Store)).one()
        for i, email in enumerate(emails):
            session.add(t.Cart(store_id=store.id, email=email, currency="USD", subtotal=Decimal("40"),
                               total=Decimal("40"), line_items=[{"quantity": 1}], status="active",
                               platform_updated_at=now(), last_activity_at=now(),
                               abandon_at=(at or now()) + timedelta(hours=hour), checkout_token=f"tok{hour}-{i}"))  # fmt: skip


def test_holdout_is_drawn_per_shopper_with_a_recorded_salted_hash(database_url: str, tmp_path: Path) -> None:
    rt = _runtime(database_url, tmp_path)
    set_store(rt, holdout_percent=30)
    emails = [f"s{i}@example.com" for i in range(300)]
    _carts(rt, emails, hour=0)
    abandon_all(rt, now() + HOUR)
    _carts(rt, [e.upper() for e in emails[:100]], hour=2)  # the same shoppers come back with new carts
    abandon_all(rt, now() + 3 * HOUR)
    with rt.sessions() as session:
        salt = session.scalars(select(t.Store.experiment_salt)).one()
        rows = session.execute(
            select(t.Cart.email, t.ExperimentAssignment.variant, t.ExperimentAssignment.unit).join(
                t.ExperimentAssignment, t.ExperimentAssignment.cart_id == t.Cart.id
            )
        ).all()
    rt.close()
    assert salt and len(salt) == 32
    by_shopper: dict[str, set[tuple[str, str]]] = {}
    for email, variant, unit in rows:
        by_shopper.setdefault(email.lower(), set()).add((variant, unit))
        # the unit is the salted hash of the shopper key, not the address itself
        assert unit == hmac.new(salt.encode(), f"e:{email.lower()}".encode(), hashlib.sha256).hexdigest()[:32]
        assert "@" not in unit
    assert len(rows) == 400 and all(len(groups) == 1 for groups in by_shopper.values())
    holdout = sum(next(iter(g))[0] == "holdout" for g in by_shopper.values())
    assert 60 <= holdout <= 120  # 90 expected of 300 shoppers


def test_each_first_send_is_logged_with_its_propensity(database_url: str, tmp_path: Path) -> None:
    rt = _runtime(database_url, tmp_path, explore_epsilon=0.5)
    set_store(rt, holdout_percent=20)
    _carts(rt, [f"p{i}@example.com" for i in range(200)])
    at = now() + HOUR
    abandon_all(rt, at)
    with rt.sessions() as session:
        decisions = {d.cart_id: d for d in session.scalars(select(t.SendDecision))}
        firsts = {m.cart_id: m for m in session.scalars(select(t.RecoveryMessage).where(t.RecoveryMessage.step == 1))}
        holdout = set(session.scalars(select(t.ExperimentAssignment.cart_id).where(t.ExperimentAssignment.variant == "holdout")))
    rt.close()
    assert set(decisions) == set(firsts) and not set(decisions) & holdout  # held-out carts get no send
    k = len(next(iter(decisions.values())).candidates)
    explored = 0
    for cart_id, d in decisions.items():
        assert d.epsilon == 0.5 and d.policy == "fixed" and d.model_version == "fixed" and d.greedy == 1.0
        assert d.chosen in d.candidates and d.features["cart_value"] == 40.0
        assert firsts[cart_id].due_at - at == timedelta(hours=d.chosen)  # the logged slot is the one sent
        expected = 0.5 + 0.5 / k if d.chosen == d.greedy else 0.5 / k
        assert d.propensity == pytest.approx(expected)
        explored += d.chosen != d.greedy
    assert 0.25 * len(decisions) <= explored <= 0.65 * len(decisions)  # 0.5 x (1 - 1/k) expected


def test_the_label_is_an_order_within_the_window_after_abandonment(database_url: str, tmp_path: Path) -> None:
    rt = _runtime(database_url, tmp_path)
    set_store(rt, holdout_percent=0, attribution_window=5 * 24 * 3600)
    _carts(rt, [f"o{i}@example.com" for i in range(4)])
    at = now() + HOUR
    ids = sorted(abandon_all(rt, at))
    with rt.sessions.begin() as session:
        store_id = session.scalars(select(t.Store.id)).one()
        for n, (cart_id, placed, cancelled) in enumerate(
            [(ids[0], at + 2 * HOUR, False), (ids[1], at + 6 * 24 * HOUR, False), (ids[2], at + HOUR, True)]
        ):
            session.add(t.Order(store_id=store_id, platform_order_id=f"o{n}", cart_id=cart_id, currency="USD",
                                total=Decimal("40"), placed_at=placed, cancelled_at=at + 3 * HOUR if cancelled else None))  # fmt: skip
    with rt.sessions() as session:
        labels = ordered_within_window(session, ids)
        assert logged_sends(session, now=at + timedelta(days=1)) == []  # windows still open: no labels yet
        assert len(logged_sends(session, now=at + timedelta(days=6))) == 4
    rt.close()
    assert labels == {ids[0]: True, ids[1]: False, ids[2]: False, ids[3]: False}


def test_train_from_db_and_evaluate_record_a_verdict(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rt = _runtime(database_url, tmp_path, explore_epsilon=1.0)
    set_store(rt, holdout_percent=0)
    base = now() - timedelta(days=10)  # every attribution window (5 days) has closed
    _carts(rt, [f"h{i}@example.com" for i in range(240)], at=base)
    abandon_all(rt, base + HOUR)
    with rt.sessions.begin() as session:
        store_id = session.scalars(select(t.Store.id)).one()
        decisions = list(session.scalars(select(t.SendDecision).order_by(t.SendDecision.id)))
        for n, d in enumerate(decisions[::3]):  # a third of the shoppers ordered
            session.add(t.Order(store_id=store_id, platform_order_id=f"x{n}", cart_id=d.cart_id, currency="USD",
                                total=Decimal("40"), placed_at=d.decided_at + 2 * HOUR))  # fmt: skip
    rt.close()
    assert len(decisions) == 240
    monkeypatch.setenv("DATABASE_URL", database_url)
    out = tmp_path / "from_db"
    runner = CliRunner()
    trained = runner.invoke(main, ["train", "--from-db", "--out", str(out)])
    assert trained.exit_code == 0, trained.output
    assert "from 240 logged sends" in trained.output and "not served until" in trained.output
    meta = json.loads((out / "send_time.json").read_text())
    assert meta["trained_on"]["source"] == "logged sends" and meta["promotion"]["promoted"] is False
    evaluated = runner.invoke(main, ["evaluate", "--model-dir", str(out)])
    assert evaluated.exit_code == 0, evaluated.output
    for label in ("on 240 logged first sends", "incumbent   IPS", "challenger  IPS", "DR", "promote: no"):
        assert label in evaluated.output
    record = json.loads((out / "send_time.json").read_text())["promotion"]
    assert record["promoted"] is False and record["n_sends"] == 240 and "evaluated_at" in record
    unknown = runner.invoke(main, ["train", "--from-db", "--store", "nowhere.myshopify.com", "--out", str(out)])
    assert unknown.exit_code != 0 and "no store nowhere.myshopify.com" in unknown.output


def test_summary_reports_lift_per_shopper_with_intervals_and_cuped(database_url: str, tmp_path: Path) -> None:
    from recovery.measure.analytics import format_summary, summarize

    rt = _runtime(database_url, tmp_path)
    set_store(rt, holdout_percent=50)
    emails = [f"c{i}@example.com" for i in range(200)]
    _carts(rt, emails)
    _carts(rt, emails[:50], hour=1)  # 50 shoppers with a second cart: still one unit each
    at = now() + 3 * HOUR
    abandon_all(rt, at)
    with rt.sessions.begin() as session:
        store_id = session.scalars(select(t.Store.id)).one()
        for n, c in enumerate(session.scalars(select(t.Cart).order_by(t.Cart.id))):
            loyal = int(c.email[1:].split("@")[0]) % 4 == 0  # a quarter ordered before (pre-period)
            if loyal:
                session.add(t.Order(store_id=store_id, platform_order_id=f"pre{n}", email=c.email, currency="USD",
                                    total=Decimal("30"), placed_at=at - timedelta(days=30)))  # fmt: skip
            if loyal or n % 5 == 0:
                c.status = "completed"
    with rt.sessions() as session:
        s = summarize(session)
    rt.close()
    r = s.lift_report
    assert r is not None and s.abandoned == 250
    assert r.treated_carts + r.holdout_carts == 200  # shoppers, not carts
    assert r.lift_low <= r.lift <= r.lift_high and r.cuped_variance_reduction is not None
    assert r.cuped_variance_reduction > 0.2  # the loyal quarter's history explains their orders
    # no recovered (attributed) order here: nothing to price the lift at (lift.average_order)
    assert r.aov == 0.0 and r.incremental_revenue == 0.0
    text = format_summary(s)
    for label in ("per shopper", "attributed revenue", "incremental revenue", "lift with CUPED", "verdict"):
        assert label in text

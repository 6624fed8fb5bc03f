"""Weekly drift (PSI) and calibration (ECE) of the send-time inputs, per store."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
from sqlalchemy import select

from app.runtime import build_runtime
from ml.simulator import ShopperModel
from recovery.measure import monitoring
from recovery.storage import tables as t
from recovery.sending.channels import FakeChannel
from tests.conftest import add_store, make_settings
from tests.loop_helpers import now

DAY = timedelta(days=1)


def _day_of_sends(rng: np.random.Generator, day: int, drift_from: int | None, n: int = 60) -> list[dict[str, float]]:
    """One simulated day of logged first sends; from `drift_from` on, mobile traffic with big carts."""
    model = ShopperModel(17)
    out = []
    for i in range(n):
        s = model.shopper(day * 1000 + i)
        f = s.features(int(rng.integers(24)), day % 7)
        if drift_from is not None and day >= drift_from:
            f["cart_value"] *= 3
            f["device_type"] = 1.0
        out.append(f)
    return out


def test_injected_drift_is_flagged_within_seven_days_and_not_before(database_url: str, tmp_path: Path) -> None:
    rt = build_runtime(make_settings(database_url, tmp_path), channels={"email": FakeChannel()}, seed=1)
    add_store(rt)
    rng = np.random.default_rng(4)
    start, drift_day, days = now() - 52 * DAY, 42, 52
    with rt.sessions.begin() as session:
        store_id = session.scalars(select(t.Store.id)).one()
        for day in range(days):
            sends = _day_of_sends(rng, day, drift_day)
            carts = [t.Cart(store_id=store_id, email=f"d{day}-{i}@example.com", currency="USD", subtotal=Decimal(1),
                            total=Decimal(1), line_items=[], status="abandoned", platform_updated_at=start,
                            last_activity_at=start) for i in range(len(sends))]  # fmt: skip
            session.add_all(carts)
            session.flush()
            for cart, f in zip(carts, sends, strict=True):
                session.add(t.SendDecision(store_id=store_id, cart_id=cart.id, candidates=[1.0], chosen=1.0, propensity=1.0,
                                           greedy=1.0, epsilon=0.0, policy="fixed", model_version="fixed",
                                           features=f, decided_at=start + day * DAY + timedelta(hours=1)))  # fmt: skip
    flagged = []
    with rt.sessions() as session:
        for day in range(35, days):  # a daily look at the last 7 days vs the 28 before
            report = monitoring.store_report(session, store_id, start + (day + 1) * DAY)
            if report.warnings:
                flagged.append(day)
    rt.close()
    assert flagged and flagged[0] >= drift_day  # no false alarm in the five stable weeks checked
    assert flagged[0] - drift_day < 7  # flagged within 7 simulated days


def test_psi_and_ece() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=5000), rng.normal(size=5000)
    assert monitoring.psi(a, b) < 0.05 and monitoring.psi(a, b + 1.0) > 0.25
    p = rng.uniform(0.05, 0.6, 20_000)
    y = (rng.random(20_000) < p).astype(float)
    assert monitoring.ece(p, y) < 0.02 and monitoring.ece(np.clip(p * 1.5, 0, 1), y) > monitoring.ECE_ALERT
    report = monitoring.Report(psi={"cart_value": 0.4, "hour_of_abandonment": 0.01}, ece=0.08)
    assert report.warnings == ["cart_value has drifted (PSI 0.40)", "send-time model is miscalibrated (ECE 0.080)"]

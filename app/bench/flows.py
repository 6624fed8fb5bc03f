"""`flows` benchmark: the price-drop fan-out. Time from a products/update delivery to every message
planned for a variant held in N open abandoned carts (default 10,000), on a scratch PostgreSQL database.

The delivery is recorded and processed as the worker does (the real Shopify normalizer, the store's
intake lock, the catalog fact and its flow signal), then the dispatcher's flow pass fans it out
(recovery/flows/fanout.py: one JSONB containment query, the unique keys, the per-flow holdout, bulk
inserts). Baseline, measured in the same run on the same carts: the dispatcher abandoning them, i.e.
planning their abandoned-cart sequence (holdout draw, fixed send time, four steps). Reported as a ratio.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, insert, select, text

from app.bench.ingest import SHOP
from app.bench.ingest_env import DEFAULT_PG, scratch_database
from recovery.intake import deliveries as intake
from recovery.storage import tables as t
from recovery.sequence.abandonment import Abandoner
from recovery.storage.db import make_engine, make_sessionmaker
from recovery.flows import fanout
from recovery.storage.tables import utcnow
from recovery.sequence.timing import Timing

VARIANT, PRODUCT = "46310287540521", "8840213577001"


def _seed(sessions, count: int, others: int) -> None:  # type: ignore[no-untyped-def]
    """`count` idle carts holding the variant, and `others` holding another product (the query must skip)."""
    now = utcnow()
    with sessions.begin() as session:
        session.execute(text("TRUNCATE carts, recovery_messages, experiment_assignments, flow_signals, flow_guards, "
                             "flow_events, variant_prices, webhook_deliveries RESTART IDENTITY CASCADE"))
        store = session.scalars(select(t.Store)).one()
        store.settings = {"holdout_percent": 10, "postal_address": "1 Harbour Road, Portland, ME 04101, USA"}
        store_id = store.id

        def line(variant: str, product: str) -> list[dict[str, Any]]:
            return [{"variant_id": variant, "product_id": product, "title": "Waxed Canvas Tote", "variant_title": "Olive",
                     "quantity": 1, "unit_price": "49.90", "sku": None, "image_url": None}]

        rows = [
            dict(store_id=store_id, checkout_token=f"bench-{i}", email=f"shopper-{i}@example.com", locale="en-US",
                 currency="USD", subtotal=Decimal("49.90"), total=Decimal("49.90"),
                 line_items=line(VARIANT, PRODUCT) if i < count else line("999", "998"),
                 status="active" if i < count else "abandoned", abandoned_at=None if i < count else now,
                 source="webhook", platform_updated_at=now - timedelta(hours=3), last_activity_at=now - timedelta(hours=3),
                 abandon_at=now - timedelta(hours=2), accepts_email=True, accepts_sms=False, created_at=now,
                 updated_at=now)
            for i in range(count + others)
        ]  # fmt: skip
        for start in range(0, len(rows), 2000):
            session.execute(insert(t.Cart), rows[start:start + 2000])
    with sessions.begin() as session:
        session.execute(text("ANALYZE carts"))


def _product_update(price: str) -> dict[str, Any]:
    at = utcnow().isoformat()
    return {"id": int(PRODUCT), "title": "Waxed Canvas Tote", "handle": "waxed-canvas-tote", "updated_at": at,
            "variants": [{"id": int(VARIANT), "product_id": int(PRODUCT), "price": price, "compare_at_price": None,
                          "inventory_item_id": 48392017645865, "inventory_policy": "deny", "updated_at": at}]}


def _run(url: str, count: int, others: int) -> dict[str, float]:
    from connectors.shopify.normalize import normalize
    from ml.inference import FixedSendTime

    engine = make_engine(url, pool_size=2)
    sessions = make_sessionmaker(engine)
    _seed(sessions, count, others)
    abandoner = Abandoner(FixedSendTime(1.0), Timing(), random.Random(1))
    start = time.perf_counter()
    while True:  # baseline: the dispatcher abandoning the same carts (planning their sequences)
        with sessions.begin() as session:
            if not abandoner.run(session, utcnow(), limit=500):
                break
    baseline = time.perf_counter() - start
    with engine.begin() as conn:  # the old price, as recorded before the carts were seen
        payload = _product_update("49.90")
        pk, _ = intake.record_delivery(conn, platform="shopify", shop=SHOP, topic="products/update",
                                       delivery_id=str(uuid.uuid4()), triggered_at=utcnow(), payload=payload)
    with sessions.begin() as session:
        intake.process_delivery(session, pk, lambda p, topic, body: normalize(topic, body))
        session.execute(text("UPDATE flow_signals SET processed_at = now()"))
    start = time.perf_counter()
    with engine.begin() as conn:  # the drop: 49.90 → 39.90
        pk, _ = intake.record_delivery(conn, platform="shopify", shop=SHOP, topic="products/update",
                                       delivery_id=str(uuid.uuid4()), triggered_at=utcnow(),
                                       payload=json.loads(json.dumps(_product_update("39.90"))))
    with sessions.begin() as session:
        intake.process_delivery(session, pk, lambda p, topic, body: normalize(topic, body))
    processed = time.perf_counter() - start
    outcome: dict[str, int] = {}
    while True:
        with sessions.begin() as session:
            done = fanout.run(session, utcnow())
        if not done and not outcome.get("_passes"):
            outcome["_passes"] = 1
        for key, value in done.items():
            outcome[key] = outcome.get(key, 0) + value
        with sessions() as session:
            if not session.scalar(select(func.count()).select_from(t.FlowSignal).where(t.FlowSignal.processed_at.is_(None))):
                break
    fan_out = time.perf_counter() - start
    with sessions() as session:
        planned = session.scalar(select(func.count()).select_from(t.RecoveryMessage).where(t.RecoveryMessage.flow == "price_drop"))
    engine.dispose()
    return {"baseline_s": baseline, "webhook_s": processed, "fanout_s": fan_out, "planned": planned,
            "holdout": outcome.get("holdout", 0), "cart_holdout": outcome.get("cart_holdout", 0)}


def run_flows(carts: int = 10_000, others: int = 10_000, repeats: int = 2, admin_url: str = DEFAULT_PG) -> dict[str, Any]:
    with scratch_database(admin_url, SHOP) as url:
        runs = [_run(url, carts, others) for _ in range(repeats)]
    best = min(runs, key=lambda r: r["fanout_s"])
    return {"carts": carts, "others": others, **best, "ratio": best["fanout_s"] / best["baseline_s"],
            "runs": runs}


def format_flows(d: dict[str, Any]) -> str:
    return "\n".join([
        f"flows: price drop for a variant held in {d['carts']:,} open abandoned carts "
        f"(+{d['others']:,} carts without it), PostgreSQL, best of {len(d['runs'])}",
        f"  baseline: abandoning the same carts (sequences planned)  {d['baseline_s']:7.2f} s",
        f"  products/update → every price-drop message planned       {d['fanout_s']:7.2f} s   "
        f"ratio {d['ratio']:.2f}  (webhook processed in {d['webhook_s'] * 1000:.0f} ms)",
        f"  planned {d['planned']:,} messages; flow holdout {d['holdout']:,}; "
        f"in the cart sequence's holdout (never messaged by flows) {d['cart_holdout']:,}",
    ])

"""`pipeline` benchmark: abandoned carts per second, from abandonment to a message in a fake channel.

Runs on a scratch PostgreSQL database: N idle carts are abandoned (holdout assignment, send time scored
for every cart, sequence planned), their first messages claimed and sent through the real Sender into a
FakeChannel by 2 send worker processes of 4 threads (as `cartresq worker` runs them), in jobs of SEND_BATCH messages. The same run is repeated with a fixed send time instead of the ONNX model,
so the ratio shows what scoring costs; and once more with the plan limit on (CARTRESQ_BILLING=on: a Pro plan,
recovery/billing; A B B A order against the fixed baseline), so its ratio shows what counting each started cart
costs, end to end and in the abandoner.
"""

from __future__ import annotations

import multiprocessing
import random
import tempfile
import threading
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select, text

from app.bench.ingest import SHOP
from app.bench.ingest_env import DEFAULT_PG, scratch_database
from recovery.sending import dispatch
from recovery.storage import tables as t
from recovery.sequence.abandonment import Abandoner
from recovery.billing.usage import PlanLimits
from recovery.sending.channels import FakeChannel
from recovery.messages.compose import Composer
from recovery.storage.db import make_engine, make_sessionmaker
from recovery.sending.dispatch import SEND_BATCH
from recovery.messages.links import LinkSigner
from recovery.sending.send import Sender
from recovery.storage.tables import utcnow
from recovery.sequence.timing import Timing

TARGET = 400.0  # carts/s on a 2-core machine


def _seed_carts(sessions, count: int, billing: bool = False) -> None:  # type: ignore[no-untyped-def]
    now = utcnow()
    with sessions.begin() as session:
        # The send ledger too: otherwise the second run's shoppers (same emails, same restarted ids) would
        # start with the first run's sends on record.
        session.execute(text(
            "TRUNCATE carts, recovery_messages, experiment_assignments, shopper_sends, plan_usage, plan_usage_carts,"
            " store_billing RESTART IDENTITY CASCADE"
        ))
        store = session.scalars(select(t.Store)).one()
        if billing:  # a Pro plan with room for every cart: the check runs, nothing is held back
            session.add(t.StoreBilling(store_id=store.id, provider=store.platform, plan="pro", status="active",
                                       period_end=now + timedelta(days=30)))
        # A postal address, as every installed store has (CAN-SPAM): without one no email may go out.
        store.settings = {"holdout_percent": 10, "postal_address": "1 Harbour Road, Portland, ME 04101, USA"}
        items = [{"variant_id": "1", "product_id": "1", "title": "Driftwood Mug", "variant_title": "Sand",
                  "quantity": 2, "unit_price": "18.00", "sku": None, "image_url": None}]
        session.execute(insert(t.Cart), [
            dict(store_id=store.id, checkout_token=f"bench-{i}", email=f"shopper-{i}@example.com", first_name="Avelin",
                 locale="en-US", currency="USD", subtotal=Decimal("36.00"), total=Decimal("36.00"), line_items=items,
                 status="active", source="webhook", platform_updated_at=now, last_activity_at=now,
                 abandon_at=now - timedelta(seconds=1), accepts_email=False, accepts_sms=False, created_at=now,
                 updated_at=now, restore_url="https://bench.example.com/recover")
            for i in range(count)
        ])


def _send_worker(url: str, batches: Any, done: Any, threads: int = 4) -> None:
    """A send worker process, as `cartresq worker` runs one: its own engine, threads, the real Sender."""
    engine = make_engine(url, pool_size=threads)
    sessions = make_sessionmaker(engine)
    channel = FakeChannel()
    sender = Sender(channels={"email": channel}, composer=Composer(LinkSigner("bench"), "https://app.example.com"))

    def consume() -> None:
        while (ids := batches.get()) is not None:
            sender.send_batch(sessions, ids)

    pool = [threading.Thread(target=consume) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    done.put(len(channel.sent))
    engine.dispose()


def _run(url: str, send_time: Any, count: int, workers: int = 2, billing: bool = False) -> tuple[float, float]:
    """The dispatcher's work in this process; sending in `workers` processes, as in production.
    Returns (carts sent per second end to end, seconds the abandoner spent per abandoned cart)."""
    engine = make_engine(url, pool_size=2)
    sessions = make_sessionmaker(engine)
    _seed_carts(sessions, count, billing)
    with sessions() as session:
        platform = session.scalars(select(t.Store.platform)).one()
    limits = PlanLimits(frozenset({platform})) if billing else None
    abandoner = Abandoner(send_time, Timing(), random.Random(1), limits=limits)
    abandoning, abandoned_total = 0.0, 0
    ctx = multiprocessing.get_context("fork")
    batches, done = ctx.Queue(), ctx.Queue()
    procs = [ctx.Process(target=_send_worker, args=(url, batches, done)) for _ in range(workers)]
    for proc in procs:
        proc.start()
    start = time.perf_counter()
    while True:
        began = time.perf_counter()
        with sessions.begin() as session:
            abandoned = abandoner.run(session, utcnow(), limit=250)
        abandoning += time.perf_counter() - began
        abandoned_total += len(abandoned)
        with sessions.begin() as session:  # everything due within the first-message window
            claimed = dispatch.claim_due(session, utcnow() + timedelta(hours=5), limit=250)
        for i in range(0, len(claimed), SEND_BATCH):
            batches.put(claimed[i : i + SEND_BATCH])
        if not abandoned and not claimed:
            break
    for _ in range(len(procs) * 4):  # one stop per consuming thread
        batches.put(None)
    sent = sum(done.get(timeout=600) for _ in procs)
    elapsed = time.perf_counter() - start
    for proc in procs:
        proc.join(timeout=30)
    engine.dispose()
    if sent == 0:
        raise RuntimeError("the pipeline sent nothing")
    return sent / elapsed, abandoning / max(1, abandoned_total)


def run_pipeline(carts: int = 3000) -> dict[str, Any]:
    from ml.inference import FixedSendTime, send_time_model
    from ml.train import train

    with tempfile.TemporaryDirectory() as tmp, scratch_database(DEFAULT_PG, SHOP) as url:
        train(Path(tmp), n_samples=20000, seed=7)
        model = send_time_model(Path(tmp) / "send_time.onnx")
        # Without and with the plan limit in A B B A order: the VM's drift (and the first run's cold start)
        # falls on both sides alike; each side is the mean of its two runs.
        runs = [_run(url, FixedSendTime(1.0), carts, billing=b) for b in (False, True, True, False)]
        fixed, fixed_abandon = (sum(r[i] for r in runs[::3]) / 2 for i in (0, 1))
        billed, billed_abandon = (sum(r[i] for r in runs[1:3]) / 2 for i in (0, 1))
        onnx, _ = _run(url, model, carts)
    # Carts whose first message went out, per second; holdout carts (10%) get none and are not counted.
    return {"carts": carts, "fixed_rps": fixed, "onnx_rps": onnx, "ratio": onnx / fixed, "target": TARGET,
            "billing_rps": billed, "billing_ratio": billed / fixed, "abandon_us": fixed_abandon * 1e6,
            "billing_abandon_us": billed_abandon * 1e6, "billing_abandon_ratio": billed_abandon / fixed_abandon}


def format_pipeline(d: dict[str, Any]) -> str:
    verdict = "PASS" if d["onnx_rps"] >= d["target"] else "FAIL"
    return "\n".join([
        f"pipeline: {d['carts']} abandoned carts → first message in a fake channel (PostgreSQL, dispatcher + 2 send processes × 4 threads)",
        f"  baseline, fixed send time   {d['fixed_rps']:8.0f} carts/s",
        f"  ONNX send time (scored)     {d['onnx_rps']:8.0f} carts/s   ratio {d['ratio']:.2f}",
        f"  plan limit on (billing)     {d['billing_rps']:8.0f} carts/s   ratio {d['billing_ratio']:.2f} vs baseline",
        f"  abandoner per cart: {d['abandon_us']:.0f} µs without billing, {d['billing_abandon_us']:.0f} µs with"
        f" (ratio {d['billing_abandon_ratio']:.2f})",
        f"  target ≥ {d['target']:.0f} carts/s: {verdict}",
    ])
